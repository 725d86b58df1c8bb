// Fused kernels of the LSTM and GRU variants (rnnlab.fast.native).
//
// Step kernels: one call does the gate maths of one time step of a whole batch, forward or
// backward, in place of about ten tensor operations from Python. The sigmoids go through ATen
// (vectorised); tanh is 2 sigmoid(2 x) - 1; everything else is one plain loop over the rows.
// Every tensor is contiguous, [B, blocks * H] row-major, on CPU, all of one floating type.
//
// Sequence kernels (inference): one call runs a whole sequence (see "Whole-sequence inference"
// below).

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace {

void check(const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.is_contiguous() && t.device().is_cpu(), name, " must be a contiguous CPU tensor");
}

// a [B, G*H] (i, [f], g, o pre-activations) becomes the activations in place; c [B, H] is the
// previous cell; peephole [G-1, H] (or empty). Returns c_new, and with finish also tanh(c_new)
// and m = o * tanh(c_new) (without a normalised cell).
std::vector<at::Tensor> lstm_gates(at::Tensor a, const at::Tensor& c, const at::Tensor& peephole,
                                   bool coupled, bool finish) {
  check(a, "a");
  check(c, "c");
  const int64_t batch = c.size(0), hidden = c.size(1);
  const int64_t g_block = coupled ? 1 : 2;
  const bool peep = peephole.numel() > 0;
  const int64_t row = a.size(1);
  at::Tensor c_new = at::empty_like(c);
  at::Tensor tc = finish ? at::empty_like(c) : at::Tensor();
  at::Tensor m = finish ? at::empty_like(c) : at::Tensor();
  at::Tensor p = peep ? peephole.contiguous() : peephole;
  AT_DISPATCH_FLOATING_TYPES(a.scalar_type(), "lstm_gates", [&] {
    scalar_t* A = a.data_ptr<scalar_t>();
    const scalar_t* C = c.data_ptr<scalar_t>();
    const scalar_t* P = peep ? p.data_ptr<scalar_t>() : nullptr;
    for (int64_t b = 0; b < batch; ++b) {
      scalar_t* r = A + b * row;
      const scalar_t* cb = C + b * hidden;
      if (peep) {
        for (int64_t j = 0; j < hidden; ++j) r[j] += P[j] * cb[j];
        if (!coupled)
          for (int64_t j = 0; j < hidden; ++j) r[hidden + j] += P[hidden + j] * cb[j];
      }
      scalar_t* rg = r + g_block * hidden;
      for (int64_t j = 0; j < hidden; ++j) rg[j] *= 2;
    }
    if (peep)
      a.narrow(1, 0, (g_block + 1) * hidden).sigmoid_();
    else
      a.sigmoid_();
    scalar_t* CN = c_new.data_ptr<scalar_t>();
    scalar_t* TC = finish ? tc.data_ptr<scalar_t>() : nullptr;
    const scalar_t* PO = peep ? P + (coupled ? 1 : 2) * hidden : nullptr;
    for (int64_t b = 0; b < batch; ++b) {
      scalar_t* r = A + b * row;
      scalar_t* rg = r + g_block * hidden;
      scalar_t* ro = rg + hidden;
      const scalar_t* cb = C + b * hidden;
      scalar_t* cn = CN + b * hidden;
      for (int64_t j = 0; j < hidden; ++j) {
        const scalar_t i = r[j];
        const scalar_t f = coupled ? 1 - i : r[hidden + j];
        const scalar_t g = 2 * rg[j] - 1;
        rg[j] = g;
        cn[j] = f * cb[j] + i * g;
      }
      if (peep)
        for (int64_t j = 0; j < hidden; ++j) ro[j] += PO[j] * cn[j];
      if (finish) {
        scalar_t* t = TC + b * hidden;
        for (int64_t j = 0; j < hidden; ++j) t[j] = 2 * cn[j];
      }
    }
    if (peep) a.narrow(1, (g_block + 1) * hidden, hidden).sigmoid_();
    if (finish) {
      tc.sigmoid_();
      scalar_t* M = m.data_ptr<scalar_t>();
      for (int64_t b = 0; b < batch; ++b) {
        const scalar_t* ro = A + b * row + (g_block + 1) * hidden;
        scalar_t* t = TC + b * hidden;
        scalar_t* mb = M + b * hidden;
        for (int64_t j = 0; j < hidden; ++j) {
          t[j] = 2 * t[j] - 1;
          mb[j] = ro[j] * t[j];
        }
      }
    }
  });
  if (finish) return {c_new, tc, m};
  return {c_new};
}

// Backward of one step. dm [B, H]: gradient of m = o * tanh(cn); dc [B, H]: gradient reaching
// c_new from later steps; dcn: the gradient reaching c_new through the output (given when the cell
// is normalised, else empty: computed here as dm * o * (1 - tanh^2)); act, c_prev, tc as saved.
// Writes the pre-activation gradients into da [B, G*H]; returns the gradient of c_prev.
at::Tensor lstm_gates_backward(const at::Tensor& dm, const at::Tensor& dc, const at::Tensor& dcn,
                               const at::Tensor& act, const at::Tensor& c_prev,
                               const at::Tensor& tc, const at::Tensor& peephole, bool coupled,
                               at::Tensor da) {
  const at::Tensor* inputs[] = {&dm, &dc, &act, &c_prev, &tc, &da};
  for (const at::Tensor* t : inputs) check(*t, "lstm_gates_backward input");
  const bool given = dcn.numel() > 0;
  if (given) check(dcn, "dcn");
  const int64_t batch = c_prev.size(0), hidden = c_prev.size(1), row = act.size(1);
  const int64_t g_block = coupled ? 1 : 2;
  const bool peep = peephole.numel() > 0;
  at::Tensor p = peep ? peephole.contiguous() : peephole;
  at::Tensor dc_prev = at::empty_like(c_prev);
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "lstm_gates_backward", [&] {
    const scalar_t *DM = dm.data_ptr<scalar_t>(), *DC = dc.data_ptr<scalar_t>();
    const scalar_t* DCN = given ? dcn.data_ptr<scalar_t>() : nullptr;
    const scalar_t *S = act.data_ptr<scalar_t>(), *CP = c_prev.data_ptr<scalar_t>();
    const scalar_t* TC = tc.data_ptr<scalar_t>();
    const scalar_t* P = peep ? p.data_ptr<scalar_t>() : nullptr;
    const scalar_t* PO = peep ? P + (coupled ? 1 : 2) * hidden : nullptr;
    scalar_t *DA = da.data_ptr<scalar_t>(), *DCP = dc_prev.data_ptr<scalar_t>();
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t o_h = b * hidden;
      const scalar_t* s = S + b * row;
      const scalar_t* sg = s + g_block * hidden;
      const scalar_t* so = sg + hidden;
      scalar_t* d = DA + b * row;
      scalar_t* dg = d + g_block * hidden;
      scalar_t* d_o = dg + hidden;
      for (int64_t j = 0; j < hidden; ++j) {
        const int64_t k = o_h + j;
        const scalar_t o = so[j], t = TC[k], m_grad = DM[k];
        const scalar_t through = given ? DCN[k] : m_grad * o * (1 - t * t);
        scalar_t dcnew = DC[k] + through;
        const scalar_t dao = m_grad * t * o * (1 - o);
        d_o[j] = dao;
        if (peep) dcnew += dao * PO[j];
        const scalar_t i = s[j], g = sg[j], cp = CP[k];
        const scalar_t f = coupled ? 1 - i : s[hidden + j];
        const scalar_t dai = dcnew * (coupled ? g - cp : g) * i * (1 - i);
        d[j] = dai;
        dg[j] = dcnew * i * (1 - g * g);
        scalar_t dcp = dcnew * f;
        if (!coupled) {
          const scalar_t daf = dcnew * cp * f * (1 - f);
          d[hidden + j] = daf;
          if (peep) dcp += daf * P[hidden + j];
        }
        if (peep) dcp += dai * P[j];
        DCP[k] = dcp;
      }
    }
  });
  return dc_prev;
}

// GRU step: x [B, 3H] input term (r, z, n), hp [B, 3H] recurrent term, h [B, H]. Returns
// rz = sigmoid(x_rz + hp_rz) [B, 2H], n = tanh(x_n + r * hp_n) and h_new = n + z (h - n).
std::vector<at::Tensor> gru_gates(const at::Tensor& x, const at::Tensor& hp, const at::Tensor& h) {
  check(x, "x");
  check(hp, "hp");
  check(h, "h");
  const int64_t batch = h.size(0), hidden = h.size(1), row = x.size(1);
  at::Tensor rz = at::empty({batch, 2 * hidden}, h.options());
  at::Tensor n = at::empty_like(h);
  at::Tensor h_new = at::empty_like(h);
  AT_DISPATCH_FLOATING_TYPES(h.scalar_type(), "gru_gates", [&] {
    const scalar_t *X = x.data_ptr<scalar_t>(), *HP = hp.data_ptr<scalar_t>();
    const scalar_t* HH = h.data_ptr<scalar_t>();
    scalar_t *RZ = rz.data_ptr<scalar_t>(), *N = n.data_ptr<scalar_t>();
    scalar_t* HN = h_new.data_ptr<scalar_t>();
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t *xb = X + b * row, *hb = HP + b * row;
      scalar_t* r = RZ + b * 2 * hidden;
      for (int64_t j = 0; j < 2 * hidden; ++j) r[j] = xb[j] + hb[j];
    }
    rz.sigmoid_();
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t *xn = X + b * row + 2 * hidden, *hn = HP + b * row + 2 * hidden;
      const scalar_t* r = RZ + b * 2 * hidden;
      scalar_t* nb = N + b * hidden;
      for (int64_t j = 0; j < hidden; ++j) nb[j] = 2 * (xn[j] + r[j] * hn[j]);
    }
    n.sigmoid_();
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t* z = RZ + b * 2 * hidden + hidden;
      const scalar_t* hb = HH + b * hidden;
      scalar_t* nb = N + b * hidden;
      scalar_t* out = HN + b * hidden;
      for (int64_t j = 0; j < hidden; ++j) {
        const scalar_t nv = 2 * nb[j] - 1;
        nb[j] = nv;
        out[j] = nv + z[j] * (hb[j] - nv);
      }
    }
  });
  return {rz, n, h_new};
}

// GRU backward of one step: dh [B, H] gradient of h_new; h_prev, rz, n, hp as in the forward.
// Writes the gradients of the input term into dx [B, 3H] and of the recurrent term into
// dhp [B, 3H]; returns the direct part of the gradient of h_prev, dh * z.
at::Tensor gru_gates_backward(const at::Tensor& dh, const at::Tensor& h_prev, const at::Tensor& rz,
                              const at::Tensor& n, const at::Tensor& hp, at::Tensor dx,
                              at::Tensor dhp) {
  const at::Tensor* inputs[] = {&dh, &h_prev, &rz, &n, &hp, &dx, &dhp};
  for (const at::Tensor* t : inputs) check(*t, "gru_gates_backward input");
  const int64_t batch = h_prev.size(0), hidden = h_prev.size(1), row = dx.size(1);
  at::Tensor direct = at::empty_like(h_prev);
  AT_DISPATCH_FLOATING_TYPES(h_prev.scalar_type(), "gru_gates_backward", [&] {
    const scalar_t *DH = dh.data_ptr<scalar_t>(), *HPREV = h_prev.data_ptr<scalar_t>();
    const scalar_t *RZ = rz.data_ptr<scalar_t>(), *N = n.data_ptr<scalar_t>();
    const scalar_t* HP = hp.data_ptr<scalar_t>();
    scalar_t *DX = dx.data_ptr<scalar_t>(), *DHP = dhp.data_ptr<scalar_t>();
    scalar_t* DIR = direct.data_ptr<scalar_t>();
    for (int64_t b = 0; b < batch; ++b) {
      const scalar_t* r = RZ + b * 2 * hidden;
      const scalar_t* z = r + hidden;
      const scalar_t* hn = HP + b * row + 2 * hidden;
      scalar_t *dxb = DX + b * row, *dhb = DHP + b * row;
      for (int64_t j = 0; j < hidden; ++j) {
        const int64_t k = b * hidden + j;
        const scalar_t g = DH[k], nv = N[k], zv = z[j], rv = r[j];
        const scalar_t dan = g * (1 - zv) * (1 - nv * nv);
        const scalar_t dar = dan * hn[j] * rv * (1 - rv);
        const scalar_t daz = g * (HPREV[k] - nv) * zv * (1 - zv);
        dxb[2 * hidden + j] = dan;
        dhb[2 * hidden + j] = dan * rv;
        dxb[j] = dhb[j] = dar;
        dxb[hidden + j] = dhb[hidden + j] = daz;
        DIR[k] = g * zv;
      }
    }
  });
  return direct;
}

// Layer-norm backward of one step over the last dimension: dy, x [B, F]; mean, rstd [B, 1] as
// torch.native_layer_norm returns them; weight [F] (or empty). Returns dx and adds the gain and
// shift gradients into dw, db [F] (each may be empty): one pass instead of torch's three outputs.
at::Tensor layer_norm_backward(const at::Tensor& dy, const at::Tensor& x, const at::Tensor& mean,
                               const at::Tensor& rstd, const at::Tensor& weight, at::Tensor dw,
                               at::Tensor db) {
  const at::Tensor* inputs[] = {&dy, &x, &mean, &rstd};
  for (const at::Tensor* t : inputs) check(*t, "layer_norm_backward input");
  const int64_t rows = x.size(0), features = x.size(1);
  const bool has_w = weight.numel() > 0, has_dw = dw.numel() > 0, has_db = db.numel() > 0;
  at::Tensor w = has_w ? weight.contiguous() : weight;
  at::Tensor dx = at::empty_like(x);
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "layer_norm_backward", [&] {
    const scalar_t *DY = dy.data_ptr<scalar_t>(), *X = x.data_ptr<scalar_t>();
    const scalar_t *M = mean.data_ptr<scalar_t>(), *R = rstd.data_ptr<scalar_t>();
    const scalar_t* W = has_w ? w.data_ptr<scalar_t>() : nullptr;
    scalar_t* DW = has_dw ? dw.data_ptr<scalar_t>() : nullptr;
    scalar_t* DB = has_db ? db.data_ptr<scalar_t>() : nullptr;
    scalar_t* DX = dx.data_ptr<scalar_t>();
    for (int64_t b = 0; b < rows; ++b) {
      const scalar_t *d = DY + b * features, *xb = X + b * features;
      const scalar_t m = M[b], r = R[b];
      scalar_t* out = DX + b * features;
      scalar_t s1 = 0, s2 = 0;
      for (int64_t j = 0; j < features; ++j) {
        const scalar_t xhat = (xb[j] - m) * r;
        const scalar_t g = has_w ? d[j] * W[j] : d[j];
        s1 += g;
        s2 += g * xhat;
        if (has_dw) DW[j] += d[j] * xhat;
        if (has_db) DB[j] += d[j];
      }
      s1 /= features;
      s2 /= features;
      for (int64_t j = 0; j < features; ++j) {
        const scalar_t xhat = (xb[j] - m) * r;
        const scalar_t g = has_w ? d[j] * W[j] : d[j];
        out[j] = r * (g - s1 - xhat * s2);
      }
    }
  });
  return dx;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Whole-sequence inference
//
// lstm_sequence / gru_sequence run every step of a sequence in one call, without autograd: per
// step one product of the state with the recurrent matrix (oneDNN with a weight packed once when
// `packed` is given, else at::mm_out into a preallocated buffer), then, for each row, one loop
// over the hidden units that forms the pre-activations from the recurrent and input products
// (computed for all steps before the call), each normalised on the fly (layer norm with the row's
// moments, or the affine map of batch norm's population statistics), plus the bias, and does the
// gate maths; a second short loop normalises the cell and forms the output. Rows past their
// length keep their state and output zero, as the reference loop rnnlab.layers.unroll.unroll.
// The row loops are compiled for AVX-512, AVX2 and plain x86-64 and the best one is chosen when
// the library loads (GCC on x86-64 Linux); in float32 exp is a polynomial (Cephes' expf, within
// 2 ulp), in float64 std::exp.

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define RNNLAB_CLONES __attribute__((target_clones("default", "avx2", "avx512f")))
#else
#define RNNLAB_CLONES
#endif
#if defined(__GNUC__)  // the helpers must be inlined into each clone to be vectorised there
#define RNNLAB_INLINE inline __attribute__((always_inline))
#else
#define RNNLAB_INLINE inline
#endif

namespace rnnlab_sequence {

enum NormKind : int64_t { kNoNorm = 0, kLayerNorm = 1, kAffine = 2 };

RNNLAB_INLINE float exp_poly(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  const float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln 2)
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;  // 2^n
  return p * __builtin_bit_cast(float, bits);
}

RNNLAB_INLINE double exp_poly(double x) { return std::exp(x); }

template <typename T>
RNNLAB_INLINE T sigmoid(T x) {
  return T(1) / (T(1) + exp_poly(-x));
}

template <typename T>
RNNLAB_INLINE T tanh_(T x) {
  return T(2) / (T(1) + exp_poly(-2 * x)) - T(1);
}

// One row's term N(v) of F features, evaluated feature by feature inside the gate loops (no
// pass of its own): v itself; layer norm (v - mean) * rstd * gain (mean and rstd of the row,
// computed on construction; a shift is folded into the bias by the caller); or the affine map
// v * scale + shift of batch norm's population statistics (scale and shift of this row and step).
template <int64_t KIND, typename T>
struct Term {
  const T* v;
  const T* a = nullptr;  // gain or scale
  const T* b = nullptr;  // shift
  T mean = 0, rstd = 1;

  RNNLAB_INLINE T operator()(int64_t j) const {
    if constexpr (KIND == kLayerNorm)
      return (v[j] - mean) * rstd * a[j];
    else if constexpr (KIND == kAffine)
      return v[j] * a[j] + b[j];
    else
      return v[j];
  }
};

template <typename T>
RNNLAB_INLINE void moments(const T* v, int64_t n, T eps, T& mean, T& rstd) {
  double sum = 0, squares = 0;
#pragma omp simd reduction(+ : sum, squares)
  for (int64_t j = 0; j < n; ++j) {
    const double x = v[j];
    sum += x;
    squares += x * x;
  }
  const double mu = sum / n, var = squares / n - mu * mu;
  mean = T(mu);
  rstd = T(1 / std::sqrt((var > 0 ? var : 0) + eps));
}

// Where a term's normalisation parameters are, for one row at one step.
template <typename T>
struct NormAt {
  const T* a = nullptr;  // layer norm: gain [F]; affine: scale [F] of this row and step
  const T* b = nullptr;  // affine: shift [F]; the cell's layer norm: shift [F]
  T eps = 0;

  template <int64_t KIND>
  RNNLAB_INLINE Term<KIND, T> term(const T* v, int64_t n) const {
    Term<KIND, T> t{v, a, b};
    if constexpr (KIND == kLayerNorm) moments(v, n, eps, t.mean, t.rstd);
    return t;
  }
};

template <typename T>
struct LSTMRow {
  int64_t hidden;
  const T* x;         // [G*H] input product
  T* a;               // [G*H] recurrent product; its o block is overwritten with the output gate
  const T* bias;      // [G*H]
  T* c;               // [H] cell, updated in place
  T* m;               // [H] out: o * tanh(N_c(c))
  const T* peephole;  // [G-1, H] or null
  NormAt<T> in, hh, cell;
  int64_t cell_kind;
};

// The gates of one LSTM row; the pre-activations N_hh(W_hh h)_j + N_ih(x)_j + b_j are formed
// inside the loop.
template <typename T, bool COUPLED, bool PEEP, int64_t KIND>
RNNLAB_INLINE void lstm_gates_row(const LSTMRow<T>& r) {
  constexpr int64_t g_block = COUPLED ? 1 : 2;
  const int64_t hidden = r.hidden, row = (g_block + 2) * hidden;
  const Term<KIND, T> hh = r.hh.template term<KIND>(r.a, row);
  const Term<KIND, T> in = r.in.template term<KIND>(r.x, row);
  const T* bias = r.bias;
  const T* p = r.peephole;
  T* c = r.c;
  T* o_out = r.a + (g_block + 1) * hidden;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) {
    const int64_t jf = hidden + j, jg = g_block * hidden + j, jo = (g_block + 1) * hidden + j;
    const T cp = c[j];
    T pre_i = hh(j) + in(j) + bias[j];
    if constexpr (PEEP) pre_i += p[j] * cp;
    const T i = sigmoid(pre_i);
    T f;
    if constexpr (COUPLED) {
      f = T(1) - i;
    } else {
      T pre_f = hh(jf) + in(jf) + bias[jf];
      if constexpr (PEEP) pre_f += p[hidden + j] * cp;
      f = sigmoid(pre_f);
    }
    const T cn = f * cp + i * tanh_(hh(jg) + in(jg) + bias[jg]);
    T pre_o = hh(jo) + in(jo) + bias[jo];
    if constexpr (PEEP) pre_o += p[g_block * hidden + j] * cn;
    c[j] = cn;
    o_out[j] = sigmoid(pre_o);
  }
}

template <typename T, bool COUPLED, bool PEEP>
RNNLAB_INLINE void lstm_gates_any(const LSTMRow<T>& r, int64_t kind) {
  if (kind == kLayerNorm)
    lstm_gates_row<T, COUPLED, PEEP, kLayerNorm>(r);
  else if (kind == kAffine)
    lstm_gates_row<T, COUPLED, PEEP, kAffine>(r);
  else
    lstm_gates_row<T, COUPLED, PEEP, kNoNorm>(r);
}

// One LSTM row and step: the gates, the new cell, and m = o * tanh(N_c(c)).
template <typename T>
RNNLAB_INLINE void lstm_row(const LSTMRow<T>& r, bool coupled, int64_t kind) {
  const int64_t hidden = r.hidden;
  if (coupled) {
    if (r.peephole) lstm_gates_any<T, true, true>(r, kind);
    else lstm_gates_any<T, true, false>(r, kind);
  } else {
    if (r.peephole) lstm_gates_any<T, false, true>(r, kind);
    else lstm_gates_any<T, false, false>(r, kind);
  }
  const T* o = r.a + (coupled ? 2 : 3) * hidden;
  const T* c = r.c;
  T* m = r.m;
  if (r.cell_kind == kLayerNorm) {
    T mean, rstd;
    moments(c, hidden, r.cell.eps, mean, rstd);
    const T *g = r.cell.a, *b = r.cell.b;
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j) m[j] = o[j] * tanh_((c[j] - mean) * rstd * g[j] + b[j]);
  } else if (r.cell_kind == kAffine) {
    const T *s = r.cell.a, *b = r.cell.b;
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j) m[j] = o[j] * tanh_(c[j] * s[j] + b[j]);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j) m[j] = o[j] * tanh_(c[j]);
  }
}

RNNLAB_CLONES void lstm_row_float(const LSTMRow<float>& r, bool coupled, int64_t kind) {
  lstm_row(r, coupled, kind);
}
void lstm_row_double(const LSTMRow<double>& r, bool coupled, int64_t kind) {
  lstm_row(r, coupled, kind);
}
inline void lstm_row_any(const LSTMRow<float>& r, bool coupled, int64_t kind) {
  lstm_row_float(r, coupled, kind);
}
inline void lstm_row_any(const LSTMRow<double>& r, bool coupled, int64_t kind) {
  lstm_row_double(r, coupled, kind);
}

template <typename T>
struct GRURow {
  int64_t hidden;
  const T* x;  // [3H] input product (r, z, n)
  const T* hp;  // [3H] recurrent product
  const T *b_ih, *b_hh;  // [3H]
  T *h, *y;  // [H] state, updated in place, and output
  NormAt<T> in, hh;
};

// One GRU row and step: r = sigmoid(X_r + P_r), z = sigmoid(X_z + P_z), n = tanh(X_n + r P_n),
// h = n + z (h - n) with X = N_ih(x) + b_ih and P = N_hh(W_hh h) + b_hh formed inside the loop.
template <typename T, int64_t KIND>
RNNLAB_INLINE void gru_row(const GRURow<T>& r) {
  const int64_t hidden = r.hidden;
  const Term<KIND, T> hh = r.hh.template term<KIND>(r.hp, 3 * hidden);
  const Term<KIND, T> in = r.in.template term<KIND>(r.x, 3 * hidden);
  const T *bi = r.b_ih, *bh = r.b_hh;
  T *h = r.h, *y = r.y;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) {
    const int64_t jz = hidden + j, jn = 2 * hidden + j;
    const T rg = sigmoid(in(j) + bi[j] + hh(j) + bh[j]);
    const T z = sigmoid(in(jz) + bi[jz] + hh(jz) + bh[jz]);
    const T n = tanh_(in(jn) + bi[jn] + rg * (hh(jn) + bh[jn]));
    const T hn = n + z * (h[j] - n);
    h[j] = hn;
    y[j] = hn;
  }
}

template <typename T>
RNNLAB_INLINE void gru_row_kind(const GRURow<T>& r, int64_t kind) {
  if (kind == kLayerNorm)
    gru_row<T, kLayerNorm>(r);
  else if (kind == kAffine)
    gru_row<T, kAffine>(r);
  else
    gru_row<T, kNoNorm>(r);
}

RNNLAB_CLONES void gru_row_float(const GRURow<float>& r, int64_t kind) { gru_row_kind(r, kind); }
void gru_row_double(const GRURow<double>& r, int64_t kind) { gru_row_kind(r, kind); }
inline void gru_row_any(const GRURow<float>& r, int64_t kind) { gru_row_float(r, kind); }
inline void gru_row_any(const GRURow<double>& r, int64_t kind) { gru_row_double(r, kind); }

// x [B, K] @ W.T: through oneDNN with the weight packed once (torch.ops.mkldnn), else at::mm_out
// with weight_t = W.T [K, N] into buffer [B, N].
struct Product {
  at::Tensor weight_t;
  std::optional<at::Tensor> packed;
  at::Tensor buffer;

  at::Tensor operator()(const at::Tensor& x) {
    if (packed.has_value()) {
      static auto linear =
          c10::Dispatcher::singleton()
              .findSchemaOrThrow("mkldnn::_linear_pointwise", "")
              .typed<at::Tensor(const at::Tensor&, const at::Tensor&,
                                const std::optional<at::Tensor>&, c10::string_view,
                                c10::List<std::optional<at::Scalar>>,
                                std::optional<c10::string_view>)>();
      return linear.call(x, *packed, std::nullopt, "none", c10::List<std::optional<at::Scalar>>(),
                         c10::string_view(""));
    }
    at::mm_out(buffer, x, weight_t);
    return buffer;
  }
};

// The parameters of a normalisation (kind, a, b, eps) for row `row` at step `t`: layer norm with
// gain a [F] (and, for the cell, shift b [F]); affine with scale a and shift b [T, 1 or B, F].
template <typename T>
NormAt<T> norm_at(int64_t kind, const at::Tensor& a, const at::Tensor& b, double eps, int64_t t,
                  int64_t row) {
  NormAt<T> n;
  n.eps = T(eps);
  if (kind == kLayerNorm) {
    n.a = a.data_ptr<T>();
    n.b = b.numel() > 0 ? b.data_ptr<T>() : nullptr;
  } else if (kind == kAffine) {
    const int64_t rows = a.size(1), features = a.size(2);
    const int64_t offset = (t * rows + (rows == 1 ? 0 : row)) * features;
    n.a = a.data_ptr<T>() + offset;
    n.b = b.data_ptr<T>() + offset;
  }
  return n;
}

void check_norm(int64_t kind, const at::Tensor& a, const at::Tensor& b, int64_t steps,
                int64_t batch, int64_t features, const char* name, bool shift = false) {
  TORCH_CHECK(kind >= kNoNorm && kind <= kAffine, name, ": unknown normalisation ", kind);
  if (kind == kLayerNorm) {
    TORCH_CHECK(a.numel() == features && b.numel() == (shift ? features : 0), name,
                shift ? ": layer norm gain and shift must have " : ": layer norm gain must have ",
                features, " features (and no shift: fold it into the bias)");
  } else if (kind == kAffine) {
    TORCH_CHECK(a.dim() == 3 && a.size(0) == steps && (a.size(1) == 1 || a.size(1) == batch) &&
                    a.size(2) == features && b.sizes() == a.sizes(),
                name, ": scale and shift must be [T, 1 or B, ", features, "]");
  }
}

std::vector<int64_t> lengths_of(const at::Tensor& lengths, int64_t batch, int64_t steps) {
  if (lengths.numel() == 0) return std::vector<int64_t>(batch, steps);
  TORCH_CHECK(lengths.numel() == batch, "lengths must have one entry per sequence");
  at::Tensor l = lengths.to(at::kLong).contiguous();
  const int64_t* p = l.data_ptr<int64_t>();
  return std::vector<int64_t>(p, p + batch);
}

// Ask for the row of the next step's input products now (about 64 cache lines): they are read
// after the next recurrent product, whose packed matrix fills the L2 cache, and streaming them
// from memory then (13 MB at T=100) stalled the loop; prefetched, they wait in L3 instead.
template <typename T>
void prefetch_row(const T* p, int64_t n) {
#if defined(__GNUC__)
  for (int64_t k = 0; k < n; k += 64 / static_cast<int64_t>(sizeof(T))) __builtin_prefetch(p + k);
#endif
}

int64_t row_grain(int64_t features) { return std::max<int64_t>(1, 8192 / std::max<int64_t>(1, features)); }

}  // namespace rnnlab_sequence

namespace {

using namespace rnnlab_sequence;

at::Tensor ready(const at::Tensor& t, const at::Tensor& like) {
  return t.numel() == 0 ? t : t.to(like.scalar_type()).contiguous();
}

// A bias vector of n entries: `bias`, or zeros when it is empty.
at::Tensor bias_or_zeros(const at::Tensor& bias, int64_t n, const at::Tensor& like, const char* name) {
  TORCH_CHECK(bias.numel() == 0 || bias.numel() == n, name, " must have ", n, " entries");
  return bias.numel() == 0 ? at::zeros({n}, like.options()) : ready(bias, like);
}

// LSTM over a whole sequence (inference). xg [T, B, G*H] input products; h0 [B, P], c0 [B, H];
// w_hh_t = W_hh.T [P, G*H] (w_hh_packed: W_hh for oneDNN, or none); peephole [G-1, H] or empty;
// w_hr_t = W_hr.T [H, P] or empty (w_hr_packed); lengths [B] or empty. The pre-activations are
// N_hh(W_hh h) + N_ih(xg_t) + bias [G*H] (or empty), both terms normalised alike (`norm`:
// parameters (in_a, in_b, in_eps) and (hh_a, hh_b, hh_eps) as in norm_at); the output gate sees
// N_c(c) (c_kind, c_a, c_b, c_eps). Returns y [T, B, P], h [B, P], c [B, H].
std::vector<at::Tensor> lstm_sequence(
    const at::Tensor& xg_in, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh_t,
    const std::optional<at::Tensor>& w_hh_packed, const at::Tensor& peephole_in,
    const at::Tensor& w_hr_t, const std::optional<at::Tensor>& w_hr_packed,
    const at::Tensor& lengths, bool reverse, bool coupled, int64_t norm, const at::Tensor& in_a_in,
    const at::Tensor& in_b_in, double in_eps, const at::Tensor& hh_a_in, const at::Tensor& hh_b_in,
    double hh_eps, const at::Tensor& bias_in, int64_t c_kind, const at::Tensor& c_a_in,
    const at::Tensor& c_b_in, double c_eps) {
  const at::Tensor xg = xg_in.contiguous();
  TORCH_CHECK(xg.dim() == 3 && xg.device().is_cpu(), "xg must be a [T, B, G*H] CPU tensor");
  const int64_t steps = xg.size(0), batch = xg.size(1), gates = coupled ? 3 : 4;
  const int64_t hidden = c0.size(1), out = h0.size(1), row = gates * hidden;
  const bool project = w_hr_t.numel() > 0;
  TORCH_CHECK(xg.size(2) == row && c0.size(0) == batch && h0.size(0) == batch,
              "xg, h0 and c0 do not agree in batch or hidden size");
  TORCH_CHECK(project || out == hidden, "h0 must have the hidden size without projection");
  check_norm(norm, in_a_in, in_b_in, steps, batch, row, "input normalisation");
  check_norm(norm, hh_a_in, hh_b_in, steps, batch, row, "recurrent normalisation");
  check_norm(c_kind, c_a_in, c_b_in, steps, batch, hidden, "cell normalisation", true);
  const at::Tensor peephole = ready(peephole_in, xg), in_a = ready(in_a_in, xg);
  const at::Tensor in_b = ready(in_b_in, xg), hh_a = ready(hh_a_in, xg), hh_b = ready(hh_b_in, xg);
  const at::Tensor c_a = ready(c_a_in, xg), c_b = ready(c_b_in, xg);
  const at::Tensor bias = bias_or_zeros(bias_in, row, xg, "bias");
  TORCH_CHECK(peephole.numel() == 0 || peephole.numel() == (gates - 1) * hidden,
              "peephole must be [G-1, H]");
  const std::vector<int64_t> len = lengths_of(lengths, batch, steps);
  at::Tensor h = h0.to(xg.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor c = c0.to(xg.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor y = lengths.numel() > 0 ? at::zeros({steps, batch, out}, xg.options())
                                     : at::empty({steps, batch, out}, xg.options());
  Product hh{w_hh_t, w_hh_packed, at::empty({batch, row}, xg.options())};
  Product hr{w_hr_t, w_hr_packed, project ? at::empty({batch, out}, xg.options()) : at::Tensor()};
  at::Tensor m_all = project ? at::empty({batch, hidden}, xg.options()) : at::Tensor();
  AT_DISPATCH_FLOATING_TYPES(xg.scalar_type(), "lstm_sequence", [&] {
    scalar_t *Y = y.data_ptr<scalar_t>(), *H = h.data_ptr<scalar_t>(), *C = c.data_ptr<scalar_t>();
    const scalar_t* X = xg.data_ptr<scalar_t>();
    const scalar_t* P = peephole.numel() > 0 ? peephole.data_ptr<scalar_t>() : nullptr;
    const scalar_t* BIAS = bias.data_ptr<scalar_t>();
    scalar_t* M = project ? m_all.data_ptr<scalar_t>() : nullptr;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = reverse ? steps - 1 - s : s, next = reverse ? t - 1 : t + 1;
      at::Tensor a = hh(h);
      scalar_t* A = a.data_ptr<scalar_t>();
      at::parallel_for(0, batch, row_grain(row), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          if (t >= len[b]) continue;
          LSTMRow<scalar_t> r;
          r.hidden = hidden;
          r.x = X + (t * batch + b) * row;
          r.a = A + b * row;
          r.bias = BIAS;
          r.c = C + b * hidden;
          r.m = project ? M + b * hidden : Y + (t * batch + b) * out;
          r.peephole = P;
          r.in = norm_at<scalar_t>(norm, in_a, in_b, in_eps, t, b);
          r.hh = norm_at<scalar_t>(norm, hh_a, hh_b, hh_eps, t, b);
          r.cell = norm_at<scalar_t>(c_kind, c_a, c_b, c_eps, t, b);
          r.cell_kind = c_kind;
          lstm_row_any(r, coupled, norm);
          if (!project) std::memcpy(H + b * out, r.m, out * sizeof(scalar_t));
          if (s + 1 < steps) prefetch_row(X + (next * batch + b) * row, row);
        }
      });
      if (project) {
        const at::Tensor p = hr(m_all);
        const scalar_t* PR = p.data_ptr<scalar_t>();
        for (int64_t b = 0; b < batch; ++b) {
          if (t >= len[b]) continue;
          std::memcpy(H + b * out, PR + b * out, out * sizeof(scalar_t));
          std::memcpy(Y + (t * batch + b) * out, PR + b * out, out * sizeof(scalar_t));
        }
      }
    }
  });
  return {y, h, c};
}

// GRU over a whole sequence (inference). xp [T, B, 3H] input products; h0 [B, H];
// w_hh_t = W_hh.T [H, 3H] (w_hh_packed as in lstm_sequence); lengths [B] or empty. The input
// term is N_ih(xp_t) + b_ih and the recurrent term N_hh(W_hh h) + b_hh (biases [3H] or empty),
// both normalised alike (`norm`, parameters as in lstm_sequence). Returns y [T, B, H], h [B, H].
std::vector<at::Tensor> gru_sequence(const at::Tensor& xp_in, const at::Tensor& h0,
                                     const at::Tensor& w_hh_t,
                                     const std::optional<at::Tensor>& w_hh_packed,
                                     const at::Tensor& lengths, bool reverse, int64_t norm,
                                     const at::Tensor& in_a_in, const at::Tensor& in_b_in,
                                     double in_eps, const at::Tensor& hh_a_in,
                                     const at::Tensor& hh_b_in, double hh_eps,
                                     const at::Tensor& b_ih_in, const at::Tensor& b_hh_in) {
  const at::Tensor xp = xp_in.contiguous();
  TORCH_CHECK(xp.dim() == 3 && xp.device().is_cpu(), "xp must be a [T, B, 3H] CPU tensor");
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), row = 3 * hidden;
  TORCH_CHECK(xp.size(2) == row && h0.size(0) == batch, "xp and h0 do not agree");
  check_norm(norm, in_a_in, in_b_in, steps, batch, row, "input normalisation");
  check_norm(norm, hh_a_in, hh_b_in, steps, batch, row, "recurrent normalisation");
  const at::Tensor in_a = ready(in_a_in, xp), in_b = ready(in_b_in, xp);
  const at::Tensor hh_a = ready(hh_a_in, xp), hh_b = ready(hh_b_in, xp);
  const at::Tensor b_ih = bias_or_zeros(b_ih_in, row, xp, "b_ih");
  const at::Tensor b_hh = bias_or_zeros(b_hh_in, row, xp, "b_hh");
  const std::vector<int64_t> len = lengths_of(lengths, batch, steps);
  at::Tensor h = h0.to(xp.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor y = lengths.numel() > 0 ? at::zeros({steps, batch, hidden}, xp.options())
                                     : at::empty({steps, batch, hidden}, xp.options());
  Product hh{w_hh_t, w_hh_packed, at::empty({batch, row}, xp.options())};
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_sequence", [&] {
    scalar_t *Y = y.data_ptr<scalar_t>(), *H = h.data_ptr<scalar_t>();
    const scalar_t* X = xp.data_ptr<scalar_t>();
    const scalar_t *BI = b_ih.data_ptr<scalar_t>(), *BH = b_hh.data_ptr<scalar_t>();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = reverse ? steps - 1 - s : s, next = reverse ? t - 1 : t + 1;
      at::Tensor a = hh(h);
      const scalar_t* A = a.data_ptr<scalar_t>();
      at::parallel_for(0, batch, row_grain(row), [&](int64_t begin, int64_t end) {
        for (int64_t b = begin; b < end; ++b) {
          if (t >= len[b]) continue;
          GRURow<scalar_t> r;
          r.hidden = hidden;
          r.x = X + (t * batch + b) * row;
          r.hp = A + b * row;
          r.b_ih = BI;
          r.b_hh = BH;
          r.h = H + b * hidden;
          r.y = Y + (t * batch + b) * hidden;
          r.in = norm_at<scalar_t>(norm, in_a, in_b, in_eps, t, b);
          r.hh = norm_at<scalar_t>(norm, hh_a, hh_b, hh_eps, t, b);
          gru_row_any(r, norm);
          if (s + 1 < steps) prefetch_row(X + (next * batch + b) * row, row);
        }
      });
    }
  });
  return {y, h};
}

}  // namespace

TORCH_LIBRARY(rnnlab_native, m) {
  m.def("lstm_gates(Tensor(a!) a, Tensor c, Tensor peephole, bool coupled, bool finish) -> Tensor[]",
        &lstm_gates);
  m.def(
      "lstm_gates_backward(Tensor dm, Tensor dc, Tensor dcn, Tensor act, Tensor c_prev, Tensor tc, "
      "Tensor peephole, bool coupled, Tensor(a!) da) -> Tensor",
      &lstm_gates_backward);
  m.def("gru_gates(Tensor x, Tensor hp, Tensor h) -> Tensor[]", &gru_gates);
  m.def(
      "layer_norm_backward(Tensor dy, Tensor x, Tensor mean, Tensor rstd, Tensor weight, "
      "Tensor(a!) dw, Tensor(b!) db) -> Tensor",
      &layer_norm_backward);
  m.def(
      "gru_gates_backward(Tensor dh, Tensor h_prev, Tensor rz, Tensor n, Tensor hp, "
      "Tensor(a!) dx, Tensor(b!) dhp) -> Tensor",
      &gru_gates_backward);
  m.def(
      "lstm_sequence(Tensor xg, Tensor h0, Tensor c0, Tensor w_hh_t, Tensor? w_hh_packed, "
      "Tensor peephole, Tensor w_hr_t, Tensor? w_hr_packed, Tensor lengths, bool reverse, "
      "bool coupled, int norm, Tensor in_a, Tensor in_b, float in_eps, Tensor hh_a, Tensor hh_b, "
      "float hh_eps, Tensor bias, int c_kind, Tensor c_a, Tensor c_b, float c_eps) -> Tensor[]",
      &lstm_sequence);
  m.def(
      "gru_sequence(Tensor xp, Tensor h0, Tensor w_hh_t, Tensor? w_hh_packed, Tensor lengths, "
      "bool reverse, int norm, Tensor in_a, Tensor in_b, float in_eps, Tensor hh_a, Tensor hh_b, "
      "float hh_eps, Tensor b_ih, Tensor b_hh) -> Tensor[]",
      &gru_sequence);
}
