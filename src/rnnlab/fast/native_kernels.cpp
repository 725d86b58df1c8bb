// Fused elementwise step kernels of the LSTM and GRU variants (rnnlab.fast.native).
//
// One call does the gate maths of one time step of a whole batch, forward or backward, in place
// of about ten tensor operations from Python. The sigmoids go through ATen (vectorised); tanh is
// 2 sigmoid(2 x) - 1; everything else is one plain loop over the contiguous rows.
// Every tensor is contiguous, [B, blocks * H] row-major, on CPU, all of one floating type.

#include <ATen/Dispatch.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

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
}
