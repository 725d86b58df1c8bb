// Fused kernels of the LSTM and GRU variants (rnnlab.fast.native).
//
// Step kernels: one call does the gate maths of one time step of a whole batch, forward or
// backward, in place of about ten tensor operations from Python. The sigmoids go through ATen
// (vectorised); tanh is 2 sigmoid(2 x) - 1; everything else is one plain loop over the rows.
// Every tensor is contiguous, [B, blocks * H] row-major, on CPU, all of one floating type.
//
// Sequence kernels (inference): one call runs a whole sequence (see "Whole-sequence inference"
// below). Their [T, B, ...] outputs come from the pool of native_buffers.cpp (compiled first).

#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <ATen/ops/mm.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <optional>
#include <vector>

namespace {

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

// GRU gate backward of one row of H units: g the gradient of h_new; r, z, n the gates, hn the
// recurrent term of n (before r), h_prev the previous state. Writes the gradients of the input
// term dx [3H] and of the recurrent term dp [3H], and the direct gradient of h_prev, dir [H].
template <typename T>
RNNLAB_INLINE void gru_row_backward(int64_t hidden, const T* g, const T* r, const T* z,
                                    const T* n, const T* hn, const T* h_prev, T* dx, T* dp,
                                    T* dir) {
  _Pragma("omp simd")
  for (int64_t j = 0; j < hidden; ++j) {
    const T gj = g[j], nj = n[j], zj = z[j], rj = r[j];
    const T dan = gj * (1 - zj) * (1 - nj * nj);
    const T dar = dan * hn[j] * rj * (1 - rj);
    const T daz = gj * (h_prev[j] - nj) * zj * (1 - zj);
    dx[2 * hidden + j] = dan;
    dp[2 * hidden + j] = dan * rj;
    dx[j] = dp[j] = dar;
    dx[hidden + j] = dp[hidden + j] = daz;
    dir[j] = gj * zj;
  }
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
      const int64_t k = b * hidden;
      gru_row_backward(hidden, DH + k, r, z, N + k, hn, HPREV + k, DX + b * row, DHP + b * row,
                       DIR + k);
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

// sigmoid(a) and sigmoid(b) with one division, q = 1 / (u v) for u = 1 + e^-a, v = 1 + e^-b,
// then sigmoid(a) = v q and sigmoid(b) = u q: perf showed the gate loops waiting on their
// divisions (a throwaway timing of a peephole LSTM row: 22 us a step at B = 32, 14 us with i and
// f paired). In float the exponents stop at 43 so that u v stays finite (sigmoid(-43) = 2e-19
// stands for anything smaller); in float64, two divisions.
RNNLAB_INLINE void sigmoid2(float a, float b, float& sa, float& sb) {
  const float u = 1.0f + exp_poly(std::min(-a, 43.0f)), v = 1.0f + exp_poly(std::min(-b, 43.0f));
  const float q = 1.0f / (u * v);
  sa = v * q;
  sb = u * q;
}
RNNLAB_INLINE void sigmoid2(double a, double b, double& sa, double& sb) {
  sa = sigmoid(a);
  sb = sigmoid(b);
}

// The LSTM's output gate o = sigmoid(pre_o) and tanh(v) of its normalised cell v = N_c(c), sharing
// a division: the gate loops leave o's pre-activation for the output loop, which knows v.
template <typename T>
RNNLAB_INLINE void output_gate(T pre_o, T v, T& o, T& tanh_v) {
  T sv;
  sigmoid2(pre_o, 2 * v, o, sv);
  tanh_v = 2 * sv - 1;
}

// m = o tanh(v), as output_gate.
template <typename T>
RNNLAB_INLINE T output(T pre_o, T v) {
  T o, tanh_v;
  output_gate(pre_o, v, o, tanh_v);
  return o * tanh_v;
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

// The mean of v [n] and 1 / sqrt(variance + eps), in two passes over v (in cache after the
// first), in the type of v: no cancellation of E[v^2] - mean^2, no conversions to double.
template <typename T>
RNNLAB_INLINE void moments(const T* v, int64_t n, T eps, T& mean, T& rstd) {
  T sum = 0, squares = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t j = 0; j < n; ++j) sum += v[j];
  mean = sum / T(n);
  const T mu = mean;
#pragma omp simd reduction(+ : squares)
  for (int64_t j = 0; j < n; ++j) squares += (v[j] - mu) * (v[j] - mu);
  rstd = T(1) / std::sqrt(squares / T(n) + eps);
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
    const T pre_g = hh(jg) + in(jg) + bias[jg];
    T i, f, g;
    if constexpr (COUPLED) {
      sigmoid2(pre_i, 2 * pre_g, i, g);
      f = T(1) - i;
      g = 2 * g - 1;
    } else {
      T pre_f = hh(jf) + in(jf) + bias[jf];
      if constexpr (PEEP) pre_f += p[hidden + j] * cp;
      sigmoid2(pre_i, pre_f, i, f);
      g = tanh_(pre_g);
    }
    const T cn = f * cp + i * g;
    T pre_o = hh(jo) + in(jo) + bias[jo];
    if constexpr (PEEP) pre_o += p[g_block * hidden + j] * cn;
    c[j] = cn;
    o_out[j] = pre_o;  // o itself is paired with tanh(N_c(c)) in the output loop
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
  const T* pre_o = r.a + (coupled ? 2 : 3) * hidden;
  const T* c = r.c;
  T* m = r.m;
  if (r.cell_kind == kLayerNorm) {
    T mean, rstd;
    moments(c, hidden, r.cell.eps, mean, rstd);
    const T *g = r.cell.a, *b = r.cell.b;
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j)
      m[j] = output(pre_o[j], (c[j] - mean) * rstd * g[j] + b[j]);
  } else if (r.cell_kind == kAffine) {
    const T *s = r.cell.a, *b = r.cell.b;
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j) m[j] = output(pre_o[j], c[j] * s[j] + b[j]);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < hidden; ++j) m[j] = output(pre_o[j], c[j]);
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
    T rg, z;
    sigmoid2(in(j) + bi[j] + hh(j) + bh[j], in(jz) + bi[jz] + hh(jz) + bh[jz], rg, z);
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

// x [B, K] @ W.T into buffer [B, N]: with `packed` W in panels [N / 64, K, 64] (native_gemm.cpp),
// or reordered for oneDNN [N, K] (torch.ops.mkldnn; a tensor of its own), else at::mm_out with
// weight_t = W.T [K, N].
struct Product {
  at::Tensor weight_t;
  std::optional<at::Tensor> packed;
  at::Tensor buffer;

  at::Tensor operator()(const at::Tensor& x) {
    if (packed.has_value() && packed->dim() == 3) {
      const at::Tensor xc = x.contiguous();
      TORCH_CHECK(xc.scalar_type() == at::kFloat && buffer.scalar_type() == at::kFloat &&
                      packed->size(1) == xc.size(1) && buffer.size(0) == xc.size(0) &&
                      buffer.size(1) == packed->size(0) * packed->size(2),
                  "the panel product does not agree with its operands");
      rnnlab_gemm::multiply(xc.data_ptr<float>(), xc.size(0), xc.size(1),
                            packed->data_ptr<float>(), buffer.size(1), buffer.data_ptr<float>());
      return buffer;
    }
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
using rnnlab_buffers::pooled_empty;

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
  at::Tensor y = pooled_empty({steps, batch, out}, xg.options());
  if (lengths.numel() > 0) y.zero_();
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
  at::Tensor y = pooled_empty({steps, batch, hidden}, xp.options());
  if (lengths.numel() > 0) y.zero_();
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

// ---------------------------------------------------------------------------------------------
// Whole-sequence training (LSTM)
//
// lstm_train_forward runs every step of a sequence in one call as lstm_sequence does, with the
// recurrent term and the cell normalised by layer norm (row statistics) or by batch norm in
// training (statistics of the batch at each step, the running statistics of the step's slot
// moved as torch.native_batch_norm moves them), and keeps in [T, ...] tensors what
// lstm_train_backward needs; that one walks the steps in reverse. All rows are computed at every
// step, also those past their length (batch statistics see them, as in the Python loop); their
// state is then kept. Plain loops over rows and features: one thread.

namespace rnnlab_training {

enum TrainNorm : int64_t { kNone = 0, kLayer = 1, kBatch = 3 };

// x [rows, F] -> hat = (x - mean) * rstd per row, rstd [rows].
template <typename T>
RNNLAB_INLINE void layer_stats_impl(const T* x, int64_t rows, int64_t features, T eps, T* hat,
                                    T* rstd) {
  for (int64_t b = 0; b < rows; ++b) {
    const T* v = x + b * features;
    T mean, r;
    rnnlab_sequence::moments(v, features, eps, mean, r);
    T* h = hat + b * features;
#pragma omp simd
    for (int64_t j = 0; j < features; ++j) h[j] = (v[j] - mean) * r;
    rstd[b] = r;
  }
}

// x [rows, F] -> hat = (x - mean) * invstd per feature over the rows, invstd [F]; moves the
// running mean and variance [F] (unbiased variance) by momentum. In blocks of kBlock features,
// whose rows stay in L1 between the passes.
constexpr int64_t kBlock = 64;

template <typename T>
RNNLAB_INLINE void batch_stats_impl(const T* x, int64_t rows, int64_t features, T eps,
                                    T momentum, T* hat, T* invstd, T* running_mean,
                                    T* running_var) {
  for (int64_t j0 = 0; j0 < features; j0 += kBlock) {
    const int64_t n = std::min(kBlock, features - j0);
    T mean[kBlock] = {}, squares[kBlock] = {};
    for (int64_t b = 0; b < rows; ++b) {
      const T* v = x + b * features + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) mean[j] += v[j];
    }
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) mean[j] /= rows;
    for (int64_t b = 0; b < rows; ++b) {
      const T* v = x + b * features + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) squares[j] += (v[j] - mean[j]) * (v[j] - mean[j]);
    }
    T* is = invstd + j0;
    T *rm = running_mean + j0, *rv = running_var + j0;
    for (int64_t j = 0; j < n; ++j) {
      is[j] = T(1) / std::sqrt(squares[j] / rows + eps);
      rm[j] = momentum * mean[j] + (1 - momentum) * rm[j];
      rv[j] = momentum * squares[j] / (rows > 1 ? rows - 1 : 1) + (1 - momentum) * rv[j];
    }
    for (int64_t b = 0; b < rows; ++b) {
      const T* v = x + b * features + j0;
      T* h = hat + b * features + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) h[j] = (v[j] - mean[j]) * is[j];
    }
  }
}

// Backward of y = hat * gain (+ shift): dy, hat [rows, F]; rstd per row (layer) or per feature
// (batch). Writes dx, adds into dgain, dshift [F] (dshift may be null).
template <typename T>
RNNLAB_INLINE void norm_backward_impl(int64_t kind, const T* dy, const T* hat, const T* rstd,
                                      const T* gain, int64_t rows, int64_t features, T* dx,
                                      T* dgain, T* dshift) {
  if (kind == kLayer) {
    for (int64_t b = 0; b < rows; ++b) {
      const T *d = dy + b * features, *h = hat + b * features;
      T* out = dx + b * features;
      T a1 = 0, a2 = 0;
#pragma omp simd reduction(+ : a1, a2)
      for (int64_t j = 0; j < features; ++j) {
        const T g = d[j] * gain[j];
        a1 += g;
        a2 += g * h[j];
        dgain[j] += d[j] * h[j];
      }
      if (dshift) {
#pragma omp simd
        for (int64_t j = 0; j < features; ++j) dshift[j] += d[j];
      }
      a1 /= features;
      a2 /= features;
      const T r = rstd[b];
#pragma omp simd
      for (int64_t j = 0; j < features; ++j) out[j] = r * (d[j] * gain[j] - a1 - h[j] * a2);
    }
    return;
  }
  for (int64_t j0 = 0; j0 < features; j0 += kBlock) {  // batch: per feature over the rows
    const int64_t n = std::min(kBlock, features - j0);
    T s1[kBlock] = {}, s2[kBlock] = {};
    for (int64_t b = 0; b < rows; ++b) {
      const T *d = dy + b * features + j0, *h = hat + b * features + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) {
        s1[j] += d[j];
        s2[j] += d[j] * h[j];
      }
    }
    T scale[kBlock];
    for (int64_t j = 0; j < n; ++j) {
      dgain[j0 + j] += s2[j];
      if (dshift) dshift[j0 + j] += s1[j];
      scale[j] = gain[j0 + j] * rstd[j0 + j];
      s1[j] /= rows;
      s2[j] /= rows;
    }
    for (int64_t b = 0; b < rows; ++b) {
      const T *d = dy + b * features + j0, *h = hat + b * features + j0;
      T* out = dx + b * features + j0;
#pragma omp simd
      for (int64_t j = 0; j < n; ++j) out[j] = scale[j] * (d[j] - s1[j] - h[j] * s2[j]);
    }
  }
}

// Compiled for each instruction set (RNNLAB_CLONES) in float32.
RNNLAB_CLONES void layer_stats(const float* x, int64_t rows, int64_t features, float eps,
                               float* hat, float* rstd) {
  layer_stats_impl(x, rows, features, eps, hat, rstd);
}
void layer_stats(const double* x, int64_t rows, int64_t features, double eps, double* hat,
                 double* rstd) {
  layer_stats_impl(x, rows, features, eps, hat, rstd);
}
RNNLAB_CLONES void batch_stats(const float* x, int64_t rows, int64_t features, float eps,
                               float momentum, float* hat, float* invstd, float* running_mean,
                               float* running_var) {
  batch_stats_impl(x, rows, features, eps, momentum, hat, invstd, running_mean, running_var);
}
void batch_stats(const double* x, int64_t rows, int64_t features, double eps, double momentum,
                 double* hat, double* invstd, double* running_mean, double* running_var) {
  batch_stats_impl(x, rows, features, eps, momentum, hat, invstd, running_mean, running_var);
}

// Step t's statistics of x [rows, features] under `kind`, the normalised values written to hat:
// layer norm keeps rstd [T, rows]; batch norm keeps rstd [T, features] and moves the running
// mean and variance [slots, features] at the step's `slot`. Nothing without a norm.
template <typename T>
void step_stats(int64_t kind, const T* x, int64_t rows, int64_t features, double eps,
                double momentum, T* hat, const at::Tensor& rstd, int64_t t,
                const at::Tensor& running_mean, const at::Tensor& running_var, int64_t slot) {
  if (kind == kLayer)
    layer_stats(x, rows, features, T(eps), hat, rstd.data_ptr<T>() + t * rows);
  else if (kind == kBatch)
    batch_stats(x, rows, features, T(eps), T(momentum), hat, rstd.data_ptr<T>() + t * features,
                running_mean.data_ptr<T>() + slot * features,
                running_var.data_ptr<T>() + slot * features);
}
RNNLAB_CLONES void norm_backward(int64_t kind, const float* dy, const float* hat,
                                 const float* rstd, const float* gain, int64_t rows,
                                 int64_t features, float* dx, float* dgain, float* dshift) {
  norm_backward_impl(kind, dy, hat, rstd, gain, rows, features, dx, dgain, dshift);
}
void norm_backward(int64_t kind, const double* dy, const double* hat, const double* rstd,
                   const double* gain, int64_t rows, int64_t features, double* dx, double* dgain,
                   double* dshift) {
  norm_backward_impl(kind, dy, hat, rstd, gain, rows, features, dx, dgain, dshift);
}

// One row's gates in training: r [G*H] pre-activations in, activations (i, f, tanh g) out and
// o's pre-activation (with its peephole term), which train_output turns into o;
// the new cell into cn [H] from the previous one cp [H]; peephole p [G-1, H] when PEEP.
template <typename T>
struct GateRow {
  int64_t hidden;
  T* r;
  const T* cp;
  T* cn;
  const T* p;
};

template <typename T, bool COUPLED, bool PEEP>
RNNLAB_INLINE void train_gates(const GateRow<T>& w) {
  constexpr int64_t g_block = COUPLED ? 1 : 2;
  const int64_t hidden = w.hidden;
  T *r = w.r, *rg = w.r + g_block * hidden, *ro = rg + hidden, *cn = w.cn;
  const T *cp = w.cp, *p = w.p;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) {
    T pre_i = r[j];
    if constexpr (PEEP) pre_i += p[j] * cp[j];
    T i, f, g;
    if constexpr (COUPLED) {
      rnnlab_sequence::sigmoid2(pre_i, 2 * rg[j], i, g);
      f = T(1) - i;
      g = 2 * g - 1;
    } else {
      T pre_f = r[hidden + j];
      if constexpr (PEEP) pre_f += p[hidden + j] * cp[j];
      rnnlab_sequence::sigmoid2(pre_i, pre_f, i, f);
      r[hidden + j] = f;
      g = rnnlab_sequence::tanh_(rg[j]);
    }
    const T cnew = f * cp[j] + i * g;
    r[j] = i;
    rg[j] = g;
    cn[j] = cnew;
    if constexpr (PEEP) ro[j] += p[g_block * hidden + j] * cnew;  // o: in train_output
  }
}

// The backward of one row's gates: dm [H] gradient of m, through [H] that of c_new through the
// output, dc [H] that of c_new from later steps, replaced by that of c_prev; act, tc, cp as
// saved; the pre-activation gradients into da [G*H].
template <typename T>
struct GateGrad {
  int64_t hidden;
  const T *act, *dm, *through, *tc, *cp, *p;
  T *dc, *da;
};

template <typename T, bool COUPLED, bool PEEP>
RNNLAB_INLINE void train_gates_backward(const GateGrad<T>& w) {
  constexpr int64_t g_block = COUPLED ? 1 : 2;
  const int64_t hidden = w.hidden;
  const T *sv = w.act, *sg = sv + g_block * hidden, *so = sg + hidden;
  const T *dm = w.dm, *th = w.through, *tc = w.tc, *cp = w.cp, *p = w.p;
  T *da = w.da, *dg = da + g_block * hidden, *d_o = dg + hidden, *dc = w.dc;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) {
    const T o = so[j];
    T dcnew = dc[j] + th[j];
    const T dao = dm[j] * tc[j] * o * (1 - o);
    d_o[j] = dao;
    if constexpr (PEEP) dcnew += dao * p[g_block * hidden + j];
    const T i = sv[j], g = sg[j], c0 = cp[j];
    const T dai = dcnew * (COUPLED ? g - c0 : g) * i * (1 - i);
    da[j] = dai;
    dg[j] = dcnew * i * (1 - g * g);
    T dcp;
    if constexpr (COUPLED) {
      dcp = dcnew * (1 - i);
    } else {
      const T f = sv[hidden + j];
      const T daf = dcnew * c0 * f * (1 - f);
      da[hidden + j] = daf;
      dcp = dcnew * f;
      if constexpr (PEEP) dcp += daf * p[hidden + j];
    }
    if constexpr (PEEP) dcp += dai * p[j];
    dc[j] = dcp;
  }
}

// tc = tanh(x * gain + shift) (gain null: tanh(x)), and o from its pre-activation in place
// (rnnlab_sequence::output_gate).
template <typename T>
RNNLAB_INLINE void train_output(const T* x, const T* gain, const T* shift, T* o, T* tc, int64_t n) {
  if (gain) {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j)
      rnnlab_sequence::output_gate(o[j], x[j] * gain[j] + shift[j], o[j], tc[j]);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) rnnlab_sequence::output_gate(o[j], x[j], o[j], tc[j]);
  }
}

template <typename T>
RNNLAB_INLINE void gates_any(const GateRow<T>& w, bool coupled) {
  if (coupled)
    w.p ? train_gates<T, true, true>(w) : train_gates<T, true, false>(w);
  else
    w.p ? train_gates<T, false, true>(w) : train_gates<T, false, false>(w);
}

template <typename T>
RNNLAB_INLINE void gates_backward_any(const GateGrad<T>& w, bool coupled) {
  if (coupled)
    w.p ? train_gates_backward<T, true, true>(w) : train_gates_backward<T, true, false>(w);
  else
    w.p ? train_gates_backward<T, false, true>(w) : train_gates_backward<T, false, false>(w);
}

// Compiled for each instruction set (RNNLAB_CLONES) in float32.
RNNLAB_CLONES void gates_float(const GateRow<float>& w, bool coupled) { gates_any(w, coupled); }
RNNLAB_CLONES void gates_backward_float(const GateGrad<float>& w, bool coupled) {
  gates_backward_any(w, coupled);
}
RNNLAB_CLONES void output_float(const float* x, const float* gain, const float* shift, float* o,
                                float* tc, int64_t n) {
  train_output(x, gain, shift, o, tc, n);
}
inline void run_gates(const GateRow<float>& w, bool coupled) { gates_float(w, coupled); }
inline void run_gates(const GateRow<double>& w, bool coupled) { gates_any(w, coupled); }
inline void run_gates_backward(const GateGrad<float>& w, bool coupled) {
  gates_backward_float(w, coupled);
}
inline void run_gates_backward(const GateGrad<double>& w, bool coupled) {
  gates_backward_any(w, coupled);
}
inline void output_row(const float* x, const float* gain, const float* shift, float* o, float* tc,
                       int64_t n) {
  output_float(x, gain, shift, o, tc, n);
}
inline void output_row(const double* x, const double* gain, const double* shift, double* o,
                       double* tc, int64_t n) {
  train_output(x, gain, shift, o, tc, n);
}


// One GRU row in training: x, hp [3H] the input and recurrent terms (r, z, n); h [H] the state.
// Writes rz [2H], n [H] and h_new [H].
template <typename T>
struct GRUGateRow {
  int64_t hidden;
  const T *x, *hp, *h;
  T *rz, *n, *h_new;
};

template <typename T>
RNNLAB_INLINE void gru_train_gates(const GRUGateRow<T>& w) {
  const int64_t hidden = w.hidden;
  const T *x = w.x, *hp = w.hp, *h = w.h;
  T *rz = w.rz, *n = w.n, *out = w.h_new;
#pragma omp simd
  for (int64_t j = 0; j < hidden; ++j) {
    T r, z;
    rnnlab_sequence::sigmoid2(x[j] + hp[j], x[hidden + j] + hp[hidden + j], r, z);
    const T nv = rnnlab_sequence::tanh_(x[2 * hidden + j] + r * hp[2 * hidden + j]);
    rz[j] = r;
    rz[hidden + j] = z;
    n[j] = nv;
    out[j] = nv + z * (h[j] - nv);
  }
}

RNNLAB_CLONES void gru_gates_float(const GRUGateRow<float>& w) { gru_train_gates(w); }
inline void run_gru_gates(const GRUGateRow<float>& w) { gru_gates_float(w); }
inline void run_gru_gates(const GRUGateRow<double>& w) { gru_train_gates(w); }


// Ask for the [B, F] block at p now: the saved tensors of the step the loop reaches next are
// read after the next recurrent product, by which time they wait in cache instead of memory.
template <typename T>
void prefetch_block(const T* p, int64_t batch, int64_t features) {
  rnnlab_sequence::prefetch_row(p, batch * features);
}

}  // namespace rnnlab_training

namespace {

using namespace rnnlab_training;

// LSTM training forward over a whole sequence. xg [T, B, G*H] the input terms (normalised, bias
// included); h0, c0 [B, H]; w_hh_t = W_hh.T [H, G*H] (w_hh_packed as in lstm_sequence);
// peephole [G-1, H] or empty; valid [T, B] bool or empty. norm: kNone, kLayer or kBatch for the
// recurrent term (gain hh_gain [G*H], shift hh_shift [G*H] or empty) and the cell (c_gain,
// c_shift [H]); with kBatch the running statistics hh_mean, hh_var [S, G*H], c_mean, c_var
// [S, H] of slot slots[t] move at step t. Returns y, h, c, then the saved tensors: h_prev,
// c_prev [T, B, H], act [T, B, G*H] (i, f, tanh g, o), hat_hh [T, B, G*H], rstd_hh ([T, B] or
// [T, G*H]), c_new (with peepholes, else the last step's), hat_c, tc [T, B, H], rstd_c ([T, B]
// or [T, H]); without normalisation hat_* and rstd_* are empty.
std::vector<at::Tensor> lstm_train_forward(
    const at::Tensor& xg_in, const at::Tensor& h0, const at::Tensor& c0, const at::Tensor& w_hh_t,
    const std::optional<at::Tensor>& w_hh_packed, const at::Tensor& peephole_in,
    const at::Tensor& valid_in, bool reverse, bool coupled, int64_t norm,
    const at::Tensor& hh_gain_in, const at::Tensor& hh_shift_in, double hh_eps,
    const at::Tensor& c_gain_in, const at::Tensor& c_shift_in, double c_eps, at::Tensor hh_mean,
    at::Tensor hh_var, at::Tensor c_mean, at::Tensor c_var, const at::Tensor& slots_in,
    double hh_momentum, double c_momentum) {
  const at::Tensor xg = xg_in.contiguous();
  TORCH_CHECK(xg.dim() == 3 && xg.device().is_cpu(), "xg must be a [T, B, G*H] CPU tensor");
  TORCH_CHECK(norm == kNone || norm == kLayer || norm == kBatch, "unknown normalisation ", norm);
  const int64_t steps = xg.size(0), batch = xg.size(1), gates = coupled ? 3 : 4;
  const int64_t hidden = c0.size(1), row = gates * hidden;
  TORCH_CHECK(xg.size(2) == row && c0.size(0) == batch && h0.size(0) == batch &&
                  h0.size(1) == hidden, "xg, h0 and c0 do not agree");
  const bool normed = norm != kNone;
  const at::Tensor peephole = ready(peephole_in, xg);
  const at::Tensor hh_gain = ready(hh_gain_in, xg), c_gain = ready(c_gain_in, xg);
  const at::Tensor hh_shift = bias_or_zeros(hh_shift_in, row, xg, "hh_shift");
  const at::Tensor c_shift = bias_or_zeros(c_shift_in, hidden, xg, "c_shift");
  TORCH_CHECK(!normed || (hh_gain.numel() == row && c_gain.numel() == hidden),
              "norm gains must have G*H and H entries");
  TORCH_CHECK(peephole.numel() == 0 || peephole.numel() == (gates - 1) * hidden,
              "peephole must be [G-1, H]");
  const bool has_valid = valid_in.numel() > 0;
  const at::Tensor valid = has_valid ? valid_in.to(at::kBool).contiguous() : valid_in;
  TORCH_CHECK(!has_valid || valid.numel() == steps * batch, "valid must be [T, B]");
  const at::Tensor slots = norm == kBatch ? slots_in.to(at::kLong).contiguous() : slots_in;
  if (norm == kBatch) {
    TORCH_CHECK(slots.numel() == steps, "slots must have one entry per step");
    const at::Tensor* stats[] = {&hh_mean, &hh_var, &c_mean, &c_var};
    for (const at::Tensor* s : stats) check(*s, "running statistics");
    TORCH_CHECK(hh_mean.scalar_type() == xg.scalar_type() &&
                    c_mean.scalar_type() == xg.scalar_type() && hh_mean.size(1) == row &&
                    c_mean.size(1) == hidden, "running statistics do not agree with xg");
  }
  const auto options = xg.options();
  at::Tensor h = h0.to(xg.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor c = c0.to(xg.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor y = pooled_empty({steps, batch, hidden}, options);
  at::Tensor h_prev = pooled_empty({steps, batch, hidden}, options);
  at::Tensor c_prev = pooled_empty({steps, batch, hidden}, options);
  at::Tensor act = pooled_empty({steps, batch, row}, options);
  const bool peep = peephole.numel() > 0;  // c_new is kept for the peephole gradient only
  at::Tensor c_new = pooled_empty({peep ? steps : 1, batch, hidden}, options);
  at::Tensor tc = pooled_empty({steps, batch, hidden}, options);
  at::Tensor hat_hh = normed ? pooled_empty({steps, batch, row}, options) : at::empty({0}, options);
  at::Tensor hat_c = normed ? pooled_empty({steps, batch, hidden}, options) : at::empty({0}, options);
  at::Tensor rstd_hh = normed ? pooled_empty({steps, norm == kBatch ? row : batch}, options)
                              : at::empty({0}, options);
  at::Tensor rstd_c = normed ? pooled_empty({steps, norm == kBatch ? hidden : batch}, options)
                             : at::empty({0}, options);
  Product hh{w_hh_t, w_hh_packed, at::empty({batch, row}, options)};
  AT_DISPATCH_FLOATING_TYPES(xg.scalar_type(), "lstm_train_forward", [&] {
    using T = scalar_t;
    const T* X = xg.data_ptr<T>();
    const T* P = peephole.numel() > 0 ? peephole.data_ptr<T>() : nullptr;
    const T *HG = normed ? hh_gain.data_ptr<T>() : nullptr, *HS = hh_shift.data_ptr<T>();
    const T *CG = normed ? c_gain.data_ptr<T>() : nullptr, *CS = c_shift.data_ptr<T>();
    const bool* V = has_valid ? valid.data_ptr<bool>() : nullptr;
    const int64_t* SL = norm == kBatch ? slots.data_ptr<int64_t>() : nullptr;
    T *H = h.data_ptr<T>(), *C = c.data_ptr<T>(), *Y = y.data_ptr<T>();
    const int64_t g_block = coupled ? 1 : 2;
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = reverse ? steps - 1 - s : s;
      const int64_t off_h = t * batch * hidden, off_g = t * batch * row;
      T* HP = h_prev.data_ptr<T>() + off_h;
      T* CP = c_prev.data_ptr<T>() + off_h;
      std::memcpy(HP, H, batch * hidden * sizeof(T));
      std::memcpy(CP, C, batch * hidden * sizeof(T));
      prefetch_block(X + off_g, batch, row);
      at::Tensor a = hh(h);
      const T* HW = a.data_ptr<T>();
      T* HAT = normed ? hat_hh.data_ptr<T>() + off_g : nullptr;
      step_stats(norm, HW, batch, row, hh_eps, hh_momentum, HAT, rstd_hh, t, hh_mean, hh_var,
                 SL ? SL[t] : 0);
      T* ACT = act.data_ptr<T>() + off_g;
      T* CN = c_new.data_ptr<T>() + (peep ? off_h : 0);
      for (int64_t b = 0; b < batch; ++b) {
        const T* x = X + off_g + b * row;
        const T* hw = normed ? HAT + b * row : HW + b * row;
        T* r = ACT + b * row;
        const T* cp = CP + b * hidden;
        T* cn = CN + b * hidden;
        if (normed) {
          _Pragma("omp simd")
          for (int64_t j = 0; j < row; ++j) r[j] = x[j] + hw[j] * HG[j] + HS[j];
        } else {
          _Pragma("omp simd")
          for (int64_t j = 0; j < row; ++j) r[j] = x[j] + hw[j];
        }
        run_gates(GateRow<T>{hidden, r, cp, cn, P}, coupled);
      }
      T* HC = normed ? hat_c.data_ptr<T>() + off_h : nullptr;
      step_stats(norm, CN, batch, hidden, c_eps, c_momentum, HC, rstd_c, t, c_mean, c_var,
                 SL ? SL[t] : 0);
      T* TC = tc.data_ptr<T>() + off_h;
      for (int64_t b = 0; b < batch; ++b) {
        T* o = ACT + b * row + (g_block + 1) * hidden;  // o's pre-activation, then o
        const T* cn = normed ? HC + b * hidden : CN + b * hidden;
        T* tcb = TC + b * hidden;
        T* yb = Y + off_h + b * hidden;
        output_row(cn, CG, CS, o, tcb, hidden);
        if (V && !V[t * batch + b]) {
          std::fill(yb, yb + hidden, T(0));
          continue;
        }
        T* hb = H + b * hidden;
        for (int64_t j = 0; j < hidden; ++j) hb[j] = yb[j] = o[j] * tcb[j];
        std::memcpy(C + b * hidden, CN + b * hidden, hidden * sizeof(T));
      }
    }
  });
  return {y, h, c, h_prev, c_prev, act, hat_hh, rstd_hh, c_new, hat_c, rstd_c, tc};
}

// Backward of lstm_train_forward. dy [T, B, H], dh, dc [B, H] the gradients of y and of the
// final state; w_hh = W_hh [G*H, H] (w_hh_packed: W_hh.T packed for oneDNN, or none); the rest
// as lstm_train_forward takes and returns them. Returns dxg [T, B, G*H] (the gradient of the
// pre-activations, which is that of xg), dhw [T, B, G*H] (of the recurrent products W_hh h;
// dxg itself without normalisation), dh0, dc0 [B, H], and the gradients of hh_gain, hh_shift,
// c_gain, c_shift (empty without normalisation).
std::vector<at::Tensor> lstm_train_backward(
    const at::Tensor& dy_in, const at::Tensor& dh_in, const at::Tensor& dc_in,
    const at::Tensor& w_hh, const std::optional<at::Tensor>& w_hh_packed,
    const at::Tensor& peephole_in, const at::Tensor& valid_in, bool reverse, bool coupled,
    int64_t norm, const at::Tensor& hh_gain_in, const at::Tensor& c_gain_in,
    const at::Tensor& c_prev, const at::Tensor& act, const at::Tensor& hat_hh,
    const at::Tensor& rstd_hh, const at::Tensor& hat_c, const at::Tensor& rstd_c,
    const at::Tensor& tc) {
  const at::Tensor dy = dy_in.contiguous();
  const int64_t steps = act.size(0), batch = act.size(1), row = act.size(2);
  const int64_t hidden = c_prev.size(2), gates = coupled ? 3 : 4;
  TORCH_CHECK(row == gates * hidden && dy.sizes() == c_prev.sizes(), "shapes do not agree");
  const bool normed = norm != kNone;
  const auto options = act.options();
  const at::Tensor peephole = ready(peephole_in, act);
  const at::Tensor hh_gain = ready(hh_gain_in, act), c_gain = ready(c_gain_in, act);
  const bool has_valid = valid_in.numel() > 0;
  const at::Tensor valid = has_valid ? valid_in.to(at::kBool).contiguous() : valid_in;
  at::Tensor dh = dh_in.to(act.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor dc = dc_in.to(act.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor dxg = pooled_empty({steps, batch, row}, options);
  at::Tensor dhw = normed ? pooled_empty({steps, batch, row}, options) : dxg;
  at::Tensor d_hh_gain = at::zeros({normed ? row : 0}, options);
  at::Tensor d_hh_shift = at::zeros({normed ? row : 0}, options);
  at::Tensor d_c_gain = at::zeros({normed ? hidden : 0}, options);
  at::Tensor d_c_shift = at::zeros({normed ? hidden : 0}, options);
  at::Tensor dcn = at::empty({batch, hidden}, options);   // gradient of N_c(c_new), then c_new
  at::Tensor dcn_x = at::empty({batch, hidden}, options);
  at::Tensor keep = at::empty({2, batch, hidden}, options);
  Product back{w_hh.contiguous(), w_hh_packed, at::empty({batch, hidden}, options)};
  AT_DISPATCH_FLOATING_TYPES(act.scalar_type(), "lstm_train_backward", [&] {
    using T = scalar_t;
    const T* DY = dy.data_ptr<T>();
    const T* P = peephole.numel() > 0 ? peephole.data_ptr<T>() : nullptr;
    const T *HG = normed ? hh_gain.data_ptr<T>() : nullptr;
    const T *CG = normed ? c_gain.data_ptr<T>() : nullptr;
    const bool* V = has_valid ? valid.data_ptr<bool>() : nullptr;
    T *DH = dh.data_ptr<T>(), *DC = dc.data_ptr<T>();
    T *DCN = dcn.data_ptr<T>(), *DCX = dcn_x.data_ptr<T>();
    T *KH = keep.data_ptr<T>(), *KC = KH + batch * hidden;
    const int64_t g_block = coupled ? 1 : 2;
    for (int64_t s = steps - 1; s >= 0; --s) {
      const int64_t t = reverse ? steps - 1 - s : s;
      const int64_t off_h = t * batch * hidden, off_g = t * batch * row;
      const T* ACT = act.data_ptr<T>() + off_g;
      const T* TC = tc.data_ptr<T>() + off_h;
      const T* CP = c_prev.data_ptr<T>() + off_h;
      // the gradient of m (dh + dy, zero past a row's length) into DH; the kept parts aside
      for (int64_t b = 0; b < batch; ++b) {
        T *dh_b = DH + b * hidden, *dc_b = DC + b * hidden;
        const T* dy_b = DY + off_h + b * hidden;
        if (V && !V[t * batch + b]) {
          std::memcpy(KH + b * hidden, dh_b, hidden * sizeof(T));
          std::memcpy(KC + b * hidden, dc_b, hidden * sizeof(T));
          std::fill(dh_b, dh_b + hidden, T(0));
          std::fill(dc_b, dc_b + hidden, T(0));
        } else {
          if (V) {
            std::fill(KH + b * hidden, KH + (b + 1) * hidden, T(0));
            std::fill(KC + b * hidden, KC + (b + 1) * hidden, T(0));
          }
          _Pragma("omp simd")
          for (int64_t j = 0; j < hidden; ++j) dh_b[j] += dy_b[j];
        }
        // through m = o * tanh(N_c(c_new)) to N_c(c_new)
        const T* o = ACT + b * row + (g_block + 1) * hidden;
        const T* tcb = TC + b * hidden;
        T* d = DCN + b * hidden;
        _Pragma("omp simd")
        for (int64_t j = 0; j < hidden; ++j) d[j] = dh_b[j] * o[j] * (1 - tcb[j] * tcb[j]);
      }
      const T* through = DCN;
      if (normed) {
        norm_backward(norm, DCN, hat_c.data_ptr<T>() + off_h,
                      rstd_c.data_ptr<T>() + t * (norm == kBatch ? hidden : batch), CG, batch,
                      hidden, DCX, d_c_gain.data_ptr<T>(), d_c_shift.data_ptr<T>());
        through = DCX;
      }
      T* DA = dxg.data_ptr<T>() + off_g;
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t k = b * hidden;
        const GateGrad<T> w{hidden, ACT + b * row, DH + k, through + k, TC + k, CP + k, P, DC + k,
                            DA + b * row};
        run_gates_backward(w, coupled);
      }
      T* DHW = dhw.data_ptr<T>() + off_g;
      if (normed)
        norm_backward(norm, DA, hat_hh.data_ptr<T>() + off_g,
                      rstd_hh.data_ptr<T>() + t * (norm == kBatch ? row : batch), HG, batch,
                      row, DHW, d_hh_gain.data_ptr<T>(), d_hh_shift.data_ptr<T>());
      if (s > 0) {  // the next step's saved tensors, while the product runs
        const int64_t u = reverse ? steps - s : s - 1;
        prefetch_block(act.data_ptr<T>() + u * batch * row, batch, row);
        if (normed) prefetch_block(hat_hh.data_ptr<T>() + u * batch * row, batch, row);
        if (normed) prefetch_block(hat_c.data_ptr<T>() + u * batch * hidden, batch, hidden);
        prefetch_block(tc.data_ptr<T>() + u * batch * hidden, batch, hidden);
        prefetch_block(c_prev.data_ptr<T>() + u * batch * hidden, batch, hidden);
        prefetch_block(DY + u * batch * hidden, batch, hidden);
      }
      const at::Tensor back_h = back(dhw.select(0, t));
      std::memcpy(DH, back_h.data_ptr<T>(), batch * hidden * sizeof(T));
      if (V) {
        for (int64_t k = 0; k < batch * hidden; ++k) {
          DH[k] += KH[k];
          DC[k] += KC[k];
        }
      }
    }
  });
  return {dxg, dhw, dh, dc, d_hh_gain, d_hh_shift, d_c_gain, d_c_shift};
}

// GRU training forward over a whole sequence. xp [T, B, 3H] the input terms (normalised, b_ih
// included); h0 [B, H]; w_hh_t = W_hh.T [H, 3H] (w_hh_packed as in lstm_sequence); b_hh [3H] or
// empty; valid [T, B] bool or empty; norm, hh_gain, hh_shift, hh_eps, hh_mean, hh_var, slots and
// hh_momentum as in lstm_train_forward (the recurrent term only). Returns y, h, then the saved
// tensors: h_prev [T, B, H], rz [T, B, 2H], n [T, B, H], hp [T, B, 3H] (the recurrent terms,
// normalised, b_hh included), hat_hh [T, B, 3H] and rstd_hh ([T, B] or [T, 3H]; both empty
// without normalisation).
std::vector<at::Tensor> gru_train_forward(
    const at::Tensor& xp_in, const at::Tensor& h0, const at::Tensor& w_hh_t,
    const std::optional<at::Tensor>& w_hh_packed, const at::Tensor& b_hh_in,
    const at::Tensor& valid_in, bool reverse, int64_t norm, const at::Tensor& hh_gain_in,
    const at::Tensor& hh_shift_in, double hh_eps, at::Tensor hh_mean, at::Tensor hh_var,
    const at::Tensor& slots_in, double hh_momentum) {
  const at::Tensor xp = xp_in.contiguous();
  TORCH_CHECK(xp.dim() == 3 && xp.device().is_cpu(), "xp must be a [T, B, 3H] CPU tensor");
  TORCH_CHECK(norm == kNone || norm == kLayer || norm == kBatch, "unknown normalisation ", norm);
  const int64_t steps = xp.size(0), batch = xp.size(1), hidden = h0.size(1), row = 3 * hidden;
  TORCH_CHECK(xp.size(2) == row && h0.size(0) == batch, "xp and h0 do not agree");
  const bool normed = norm != kNone;
  const at::Tensor hh_gain = ready(hh_gain_in, xp);
  const at::Tensor hh_shift = bias_or_zeros(hh_shift_in, row, xp, "hh_shift");
  const at::Tensor b_hh = bias_or_zeros(b_hh_in, row, xp, "b_hh");
  TORCH_CHECK(!normed || hh_gain.numel() == row, "the norm gain must have 3H entries");
  const bool has_valid = valid_in.numel() > 0;
  const at::Tensor valid = has_valid ? valid_in.to(at::kBool).contiguous() : valid_in;
  TORCH_CHECK(!has_valid || valid.numel() == steps * batch, "valid must be [T, B]");
  const at::Tensor slots = norm == kBatch ? slots_in.to(at::kLong).contiguous() : slots_in;
  if (norm == kBatch) {
    TORCH_CHECK(slots.numel() == steps, "slots must have one entry per step");
    check(hh_mean, "running statistics");
    check(hh_var, "running statistics");
    TORCH_CHECK(hh_mean.scalar_type() == xp.scalar_type() && hh_mean.size(1) == row,
                "running statistics do not agree with xp");
  }
  const auto options = xp.options();
  at::Tensor h = h0.to(xp.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor y = pooled_empty({steps, batch, hidden}, options);
  at::Tensor h_prev = pooled_empty({steps, batch, hidden}, options);
  at::Tensor rz = pooled_empty({steps, batch, 2 * hidden}, options);
  at::Tensor n = pooled_empty({steps, batch, hidden}, options);
  at::Tensor hp = pooled_empty({steps, batch, row}, options);
  at::Tensor hat_hh = normed ? pooled_empty({steps, batch, row}, options) : at::empty({0}, options);
  at::Tensor rstd_hh = normed ? pooled_empty({steps, norm == kBatch ? row : batch}, options)
                              : at::empty({0}, options);
  at::Tensor h_new = at::empty({batch, hidden}, options);
  Product hh{w_hh_t, w_hh_packed, at::empty({batch, row}, options)};
  AT_DISPATCH_FLOATING_TYPES(xp.scalar_type(), "gru_train_forward", [&] {
    using T = scalar_t;
    const T* X = xp.data_ptr<T>();
    const T *HG = normed ? hh_gain.data_ptr<T>() : nullptr, *HS = hh_shift.data_ptr<T>();
    const T* BH = b_hh.data_ptr<T>();
    const bool* V = has_valid ? valid.data_ptr<bool>() : nullptr;
    const int64_t* SL = norm == kBatch ? slots.data_ptr<int64_t>() : nullptr;
    T *H = h.data_ptr<T>(), *Y = y.data_ptr<T>(), *HN = h_new.data_ptr<T>();
    for (int64_t s = 0; s < steps; ++s) {
      const int64_t t = reverse ? steps - 1 - s : s;
      const int64_t off_h = t * batch * hidden, off_g = t * batch * row;
      T* HPREV = h_prev.data_ptr<T>() + off_h;
      std::memcpy(HPREV, H, batch * hidden * sizeof(T));
      prefetch_block(X + off_g, batch, row);
      at::Tensor a = hh(h);
      const T* HW = a.data_ptr<T>();
      T* HAT = normed ? hat_hh.data_ptr<T>() + off_g : nullptr;
      step_stats(norm, HW, batch, row, hh_eps, hh_momentum, HAT, rstd_hh, t, hh_mean, hh_var,
                 SL ? SL[t] : 0);
      T* HP = hp.data_ptr<T>() + off_g;
      for (int64_t b = 0; b < batch; ++b) {
        T* p = HP + b * row;
        if (normed) {
          const T* v = HAT + b * row;
          _Pragma("omp simd")
          for (int64_t j = 0; j < row; ++j) p[j] = v[j] * HG[j] + HS[j] + BH[j];
        } else {
          const T* v = HW + b * row;
          _Pragma("omp simd")
          for (int64_t j = 0; j < row; ++j) p[j] = v[j] + BH[j];
        }
        const int64_t k = b * hidden;
        run_gru_gates(GRUGateRow<T>{hidden, X + off_g + b * row, p, HPREV + k,
                                    rz.data_ptr<T>() + (t * batch + b) * 2 * hidden,
                                    n.data_ptr<T>() + off_h + k, HN + k});
        T* yb = Y + off_h + k;
        if (V && !V[t * batch + b]) {
          std::fill(yb, yb + hidden, T(0));
          continue;
        }
        std::memcpy(yb, HN + k, hidden * sizeof(T));
        std::memcpy(H + k, HN + k, hidden * sizeof(T));
      }
    }
  });
  return {y, h, h_prev, rz, n, hp, hat_hh, rstd_hh};
}

// Backward of gru_train_forward. dy [T, B, H], dh [B, H] the gradients of y and of the final
// state; w_hh = W_hh [3H, H] (w_hh_packed: W_hh.T packed for oneDNN, or none); the rest as
// gru_train_forward takes and returns them. Returns dxp [T, B, 3H] (the gradient of the input
// terms), dhp [T, B, 3H] (of the recurrent terms, whose sum is that of b_hh), dhw [T, B, 3H]
// (of the recurrent products W_hh h; dhp itself without normalisation), dh0 [B, H], and the
// gradients of hh_gain and hh_shift (empty without normalisation).
std::vector<at::Tensor> gru_train_backward(
    const at::Tensor& dy_in, const at::Tensor& dh_in, const at::Tensor& w_hh,
    const std::optional<at::Tensor>& w_hh_packed, const at::Tensor& valid_in, bool reverse,
    int64_t norm, const at::Tensor& hh_gain_in, const at::Tensor& h_prev, const at::Tensor& rz,
    const at::Tensor& n, const at::Tensor& hp, const at::Tensor& hat_hh,
    const at::Tensor& rstd_hh) {
  const at::Tensor dy = dy_in.contiguous();
  const int64_t steps = hp.size(0), batch = hp.size(1), row = hp.size(2), hidden = row / 3;
  TORCH_CHECK(dy.sizes() == h_prev.sizes() && h_prev.size(2) == hidden, "shapes do not agree");
  const bool normed = norm != kNone;
  const auto options = hp.options();
  const at::Tensor hh_gain = ready(hh_gain_in, hp);
  const bool has_valid = valid_in.numel() > 0;
  const at::Tensor valid = has_valid ? valid_in.to(at::kBool).contiguous() : valid_in;
  at::Tensor dh = dh_in.to(hp.scalar_type()).clone(at::MemoryFormat::Contiguous);
  at::Tensor dxp = pooled_empty({steps, batch, row}, options);
  at::Tensor dhp = pooled_empty({steps, batch, row}, options);
  at::Tensor dhw = normed ? pooled_empty({steps, batch, row}, options) : dhp;
  at::Tensor d_gain = at::zeros({normed ? row : 0}, options);
  at::Tensor d_shift = at::zeros({normed ? row : 0}, options);
  at::Tensor direct = at::empty({batch, hidden}, options);
  at::Tensor keep = at::empty({batch, hidden}, options);
  Product back{w_hh.contiguous(), w_hh_packed, at::empty({batch, hidden}, options)};
  AT_DISPATCH_FLOATING_TYPES(hp.scalar_type(), "gru_train_backward", [&] {
    using T = scalar_t;
    const T* DY = dy.data_ptr<T>();
    const T* HG = normed ? hh_gain.data_ptr<T>() : nullptr;
    const bool* V = has_valid ? valid.data_ptr<bool>() : nullptr;
    T *DH = dh.data_ptr<T>(), *DIR = direct.data_ptr<T>(), *KH = keep.data_ptr<T>();
    for (int64_t s = steps - 1; s >= 0; --s) {
      const int64_t t = reverse ? steps - 1 - s : s;
      const int64_t off_h = t * batch * hidden, off_g = t * batch * row;
      T *DX = dxp.data_ptr<T>() + off_g, *DP = dhp.data_ptr<T>() + off_g;
      for (int64_t b = 0; b < batch; ++b) {
        const int64_t k = b * hidden;
        T* g = DH + k;
        if (V && !V[t * batch + b]) {  // the gradient of h passes this step untouched
          std::memcpy(KH + k, g, hidden * sizeof(T));
          std::fill(g, g + hidden, T(0));
        } else {
          if (V) std::fill(KH + k, KH + k + hidden, T(0));
          const T* d = DY + off_h + k;
          _Pragma("omp simd")
          for (int64_t j = 0; j < hidden; ++j) g[j] += d[j];
        }
        const T* r = rz.data_ptr<T>() + (t * batch + b) * 2 * hidden;
        const T* z = r + hidden;
        const T* nv = n.data_ptr<T>() + off_h + k;
        const T* hn = hp.data_ptr<T>() + off_g + b * row + 2 * hidden;
        const T* hprev = h_prev.data_ptr<T>() + off_h + k;
        gru_row_backward(hidden, g, r, z, nv, hn, hprev, DX + b * row, DP + b * row, DIR + k);
      }
      T* DW = dhw.data_ptr<T>() + off_g;
      if (normed)
        norm_backward(norm, DP, hat_hh.data_ptr<T>() + off_g,
                      rstd_hh.data_ptr<T>() + t * (norm == kBatch ? row : batch), HG, batch, row,
                      DW, d_gain.data_ptr<T>(), d_shift.data_ptr<T>());
      if (s > 0) {  // the next step's saved tensors, while the product runs
        const int64_t u = reverse ? steps - s : s - 1;
        prefetch_block(hp.data_ptr<T>() + u * batch * row, batch, row);
        if (normed) prefetch_block(hat_hh.data_ptr<T>() + u * batch * row, batch, row);
        prefetch_block(rz.data_ptr<T>() + u * batch * 2 * hidden, batch, 2 * hidden);
        prefetch_block(n.data_ptr<T>() + u * batch * hidden, batch, hidden);
        prefetch_block(h_prev.data_ptr<T>() + u * batch * hidden, batch, hidden);
        prefetch_block(DY + u * batch * hidden, batch, hidden);
      }
      const at::Tensor back_h = back(dhw.select(0, t));
      const T* BHV = back_h.data_ptr<T>();
      for (int64_t k = 0; k < batch * hidden; ++k) DH[k] = BHV[k] + DIR[k] + (V ? KH[k] : T(0));
    }
  });
  return {dxp, dhp, dhw, dh, d_gain, d_shift};
}

// Batch norm of every step of x [T, B, F] with the statistics of the batch at that step, as
// RecurrentBatchNorm.normalize_steps in training: y = hat * gain + shift (shift [F] or empty);
// the running statistics [S, F] of slot slots[t] move at step t. Returns y, hat [T, B, F] and
// invstd [T, F].
std::vector<at::Tensor> batch_norm_steps(const at::Tensor& x_in, const at::Tensor& gain_in,
                                         const at::Tensor& shift_in, double eps, double momentum,
                                         at::Tensor running_mean, at::Tensor running_var,
                                         const at::Tensor& slots_in) {
  const at::Tensor x = x_in.contiguous();
  TORCH_CHECK(x.dim() == 3 && x.device().is_cpu(), "x must be a [T, B, F] CPU tensor");
  const int64_t steps = x.size(0), batch = x.size(1), features = x.size(2);
  const at::Tensor gain = ready(gain_in, x);
  const at::Tensor shift = bias_or_zeros(shift_in, features, x, "shift");
  const at::Tensor slots = slots_in.to(at::kLong).contiguous();
  TORCH_CHECK(gain.numel() == features && slots.numel() == steps, "gain or slots do not agree");
  check(running_mean, "running_mean");
  check(running_var, "running_var");
  TORCH_CHECK(running_mean.scalar_type() == x.scalar_type() && running_mean.size(1) == features &&
                  running_var.sizes() == running_mean.sizes(),
              "running statistics do not agree with x");
  at::Tensor y = pooled_empty(x.sizes(), x.options()), hat = pooled_empty(x.sizes(), x.options());
  at::Tensor invstd = at::empty({steps, features}, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "batch_norm_steps", [&] {
    using T = scalar_t;
    const T *G = gain.data_ptr<T>(), *S = shift.data_ptr<T>();
    const int64_t* SL = slots.data_ptr<int64_t>();
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t off = t * batch * features;
      T* HAT = hat.data_ptr<T>() + off;
      batch_stats(x.data_ptr<T>() + off, batch, features, T(eps), T(momentum), HAT,
                  invstd.data_ptr<T>() + t * features,
                  running_mean.data_ptr<T>() + SL[t] * features,
                  running_var.data_ptr<T>() + SL[t] * features);
      T* Y = y.data_ptr<T>() + off;
      for (int64_t b = 0; b < batch; ++b) {
        const T* h = HAT + b * features;
        T* out = Y + b * features;
        _Pragma("omp simd")
        for (int64_t j = 0; j < features; ++j) out[j] = h[j] * G[j] + S[j];
      }
    }
  });
  return {y, hat, invstd};
}

// Backward of batch_norm_steps: dy, hat [T, B, F], invstd [T, F], gain [F]. Returns dx and the
// gradients of gain and shift [F].
std::vector<at::Tensor> batch_norm_steps_backward(const at::Tensor& dy_in, const at::Tensor& hat,
                                                  const at::Tensor& invstd,
                                                  const at::Tensor& gain_in) {
  const at::Tensor dy = dy_in.contiguous();
  check(hat, "hat");
  check(invstd, "invstd");
  TORCH_CHECK(dy.sizes() == hat.sizes(), "dy and hat do not agree");
  const int64_t steps = hat.size(0), batch = hat.size(1), features = hat.size(2);
  const at::Tensor gain = ready(gain_in, hat);
  at::Tensor dx = pooled_empty(hat.sizes(), hat.options());
  at::Tensor dgain = at::zeros({features}, hat.options()), dshift = at::zeros_like(dgain);
  AT_DISPATCH_FLOATING_TYPES(hat.scalar_type(), "batch_norm_steps_backward", [&] {
    using T = scalar_t;
    for (int64_t t = 0; t < steps; ++t) {
      const int64_t off = t * batch * features;
      norm_backward(kBatch, dy.data_ptr<T>() + off, hat.data_ptr<T>() + off,
                    invstd.data_ptr<T>() + t * features, gain.data_ptr<T>(), batch, features,
                    dx.data_ptr<T>() + off, dgain.data_ptr<T>(), dshift.data_ptr<T>());
    }
  });
  return {dx, dgain, dshift};
}

}  // namespace

TORCH_LIBRARY(rnnlab_native, m) {
  m.def("set_buffer_pool_limit(int bytes) -> int", &rnnlab_buffers::set_buffer_pool_limit);
  m.def("buffer_pool_bytes() -> int", &rnnlab_buffers::buffer_pool_bytes);
  m.def("panel_gemm_covers(Tensor w) -> bool", &rnnlab_gemm::covers);
  m.def("pack_panels(Tensor w) -> Tensor", &rnnlab_gemm::pack);
  m.def("panel_product(Tensor x, Tensor panels) -> Tensor", &rnnlab_gemm::panel_product);
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
  m.def(
      "lstm_train_forward(Tensor xg, Tensor h0, Tensor c0, Tensor w_hh_t, Tensor? w_hh_packed, "
      "Tensor peephole, Tensor valid, bool reverse, bool coupled, int norm, Tensor hh_gain, "
      "Tensor hh_shift, float hh_eps, Tensor c_gain, Tensor c_shift, float c_eps, "
      "Tensor(a!) hh_mean, Tensor(b!) hh_var, Tensor(c!) c_mean, Tensor(d!) c_var, Tensor slots, "
      "float hh_momentum, float c_momentum) -> Tensor[]",
      &lstm_train_forward);
  m.def(
      "lstm_train_backward(Tensor dy, Tensor dh, Tensor dc, Tensor w_hh, Tensor? w_hh_packed, "
      "Tensor peephole, Tensor valid, bool reverse, bool coupled, int norm, Tensor hh_gain, "
      "Tensor c_gain, Tensor c_prev, Tensor act, Tensor hat_hh, Tensor rstd_hh, Tensor hat_c, "
      "Tensor rstd_c, Tensor tc) -> Tensor[]",
      &lstm_train_backward);
  m.def(
      "batch_norm_steps(Tensor x, Tensor gain, Tensor shift, float eps, float momentum, "
      "Tensor(a!) running_mean, Tensor(b!) running_var, Tensor slots) -> Tensor[]",
      &batch_norm_steps);
  m.def(
      "batch_norm_steps_backward(Tensor dy, Tensor hat, Tensor invstd, Tensor gain) -> Tensor[]",
      &batch_norm_steps_backward);
  m.def(
      "gru_train_forward(Tensor xp, Tensor h0, Tensor w_hh_t, Tensor? w_hh_packed, Tensor b_hh, "
      "Tensor valid, bool reverse, int norm, Tensor hh_gain, Tensor hh_shift, float hh_eps, "
      "Tensor(a!) hh_mean, Tensor(b!) hh_var, Tensor slots, float hh_momentum) -> Tensor[]",
      &gru_train_forward);
  m.def(
      "gru_train_backward(Tensor dy, Tensor dh, Tensor w_hh, Tensor? w_hh_packed, Tensor valid, "
      "bool reverse, int norm, Tensor hh_gain, Tensor h_prev, Tensor rz, Tensor n, Tensor hp, "
      "Tensor hat_hh, Tensor rstd_hh) -> Tensor[]",
      &gru_train_backward);
}
