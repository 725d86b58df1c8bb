// The per-step products of the whole-sequence kernels (rnnlab.fast.native) on AVX-512 CPUs.
//
// Every step multiplies the state by the recurrent matrix, y [M, N] = x [M, K] @ W.T, a product
// too small for a general GEMM to pay its set-up: torch's oneDNN matmul spends about 10 us of
// each 88 us call (M = 32, K = 256, N = 1024, measured here) on checks, its primitive cache and
// the output's allocation. Here W is packed once per sequence into panels of 64 output columns
// ([N / 64, K, 64], each panel's K x 64 block contiguous), and a product is one register-blocked
// loop: for a panel and 6 rows, 24 accumulators of 16 floats, four loads of the panel and six
// broadcasts of x at each k (benchmarks/panel_product_speed.py, against oneDNN with its weight
// reordered once: 0.85-1.01x the time at M = 32, K = 256, N = 1024; 0.5-0.7x at M = 1-8).
// Sums run over k in order, as a plain loop's would. Only for float32 with N a multiple of 64, on
// CPUs with AVX-512F (GCC or Clang on x86-64); the kernels use oneDNN or at::mm elsewhere.

#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rnnlab_gemm {

constexpr int64_t kPanel = 64;  // output columns per panel: four AVX-512 registers of floats
constexpr int kRows = 6;         // rows per block: 6 x 4 of the 32 vector registers accumulate
constexpr int64_t kDepth = 128;  // slice of K: a panel's slice (32 KB) and x's (16 KB at M = 32)

#if (defined(__GNUC__) || defined(__clang__)) && defined(__x86_64__)
#define RNNLAB_PANEL_GEMM 1
#define RNNLAB_AVX512 __attribute__((target("avx512f")))
#else
#define RNNLAB_PANEL_GEMM 0
#endif

// Whether this machine and W [N, K] can take the panel product.
bool covers(const at::Tensor& w) {
#if RNNLAB_PANEL_GEMM
  static const bool avx512 = __builtin_cpu_supports("avx512f");
  return avx512 && w.dim() == 2 && w.scalar_type() == at::kFloat && w.device().is_cpu() &&
         w.size(0) % kPanel == 0 && w.size(0) > 0 && w.size(1) > 0;
#else
  return false;
#endif
}

// W [N, K] -> panels [N / 64, K, 64].
at::Tensor pack(const at::Tensor& w_in) {
  TORCH_CHECK(covers(w_in), "pack_panels: needs a float32 [N, K] CPU matrix with N a multiple of ",
              kPanel, " on a CPU with AVX-512F");
  const int64_t n = w_in.size(0), k = w_in.size(1);
  // one strided copy by torch (measured here: 170 us for a [1024, 256] matrix, against 300-440 us
  // for a plain loop in either order); a transposed W (the backward's) is read row by row as it is
  return w_in.reshape({n / kPanel, kPanel, k}).transpose(1, 2).contiguous();
}

#if RNNLAB_PANEL_GEMM
// ROWS rows of x (row stride ldx) times `depth` rows of one panel [depth, 64] into y (row stride
// ldy), added to what y holds when `accumulate`.
template <int ROWS>
RNNLAB_AVX512 inline __attribute__((always_inline)) void panel_block(const float* x, int64_t ldx,
                                                                      const float* panel,
                                                                      int64_t depth, float* y,
                                                                      int64_t ldy, bool accumulate) {
  float acc[ROWS][kPanel];
  for (int r = 0; r < ROWS; ++r)
#pragma omp simd
    for (int j = 0; j < kPanel; ++j) acc[r][j] = accumulate ? y[r * ldy + j] : 0.0f;
  for (int64_t q = 0; q < depth; ++q) {
    const float* w = panel + q * kPanel;
#pragma GCC unroll 6
    for (int r = 0; r < ROWS; ++r) {
      const float a = x[r * ldx + q];
#pragma omp simd
      for (int j = 0; j < kPanel; ++j) acc[r][j] += a * w[j];
    }
  }
  for (int r = 0; r < ROWS; ++r)
#pragma omp simd
    for (int j = 0; j < kPanel; ++j) y[r * ldy + j] = acc[r][j];
}

// All m rows of x times `depth` rows of one panel into y (row strides k and n): in blocks of 6
// rows, then of 4, 2 and 1.
RNNLAB_AVX512 void panel_rows(const float* x, int64_t m, int64_t k, const float* panel,
                              int64_t depth, float* y, int64_t n, bool accumulate) {
  int64_t r = 0;
  for (; r + kRows <= m; r += kRows)
    panel_block<kRows>(x + r * k, k, panel, depth, y + r * n, n, accumulate);
  for (; r + 4 <= m; r += 4) panel_block<4>(x + r * k, k, panel, depth, y + r * n, n, accumulate);
  for (; r + 2 <= m; r += 2) panel_block<2>(x + r * k, k, panel, depth, y + r * n, n, accumulate);
  for (; r < m; ++r) panel_block<1>(x + r * k, k, panel, depth, y + r * n, n, accumulate);
}
#endif

// y [M, N] = x [M, K] @ W.T with W as `pack` returns it; x and y contiguous. K is taken in
// slices of kDepth, each slice of x copied to rows of its own, so that it and a panel's slice
// stay in the L1 cache while all the panels pass: rows of x 4 KB apart (K = 1024) all fall in
// the same cache set (measured here at M = 32, K = 1024, N = 256: 235 us in place, against
// oneDNN's 88 us).
void multiply(const float* x, int64_t m, int64_t k, const float* panels, int64_t n, float* y) {
#if RNNLAB_PANEL_GEMM
  thread_local std::vector<float> slice;
  slice.resize(static_cast<size_t>(m * std::min(kDepth, k)));
  for (int64_t k0 = 0; k0 < k; k0 += kDepth) {
    const int64_t depth = std::min(kDepth, k - k0);
    for (int64_t r = 0; r < m; ++r)
      std::memcpy(slice.data() + r * depth, x + r * k + k0, depth * sizeof(float));
    for (int64_t p = 0; p < n / kPanel; ++p)
      panel_rows(slice.data(), m, depth, panels + (p * k + k0) * kPanel, depth, y + p * kPanel, n,
                 k0 > 0);
  }
#else
  TORCH_CHECK(false, "the panel product needs GCC or Clang on x86-64");
#endif
}

// One product x [M, K] @ W.T with W as `pack` returns it (an op of its own, for tests and
// benchmarks/panel_product_speed.py).
at::Tensor panel_product(const at::Tensor& x_in, const at::Tensor& panels) {
  TORCH_CHECK(panels.dim() == 3 && panels.size(2) == kPanel && panels.scalar_type() == at::kFloat,
              "panels must be [N / 64, K, 64] float32, as pack_panels returns them");
  const at::Tensor x = x_in.contiguous();
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kFloat && x.size(1) == panels.size(1),
              "x must be float32 [M, K] with the K of the panels");
  at::Tensor y = at::empty({x.size(0), panels.size(0) * kPanel}, x.options());
  multiply(x.data_ptr<float>(), x.size(0), x.size(1), panels.contiguous().data_ptr<float>(),
           y.size(1), y.data_ptr<float>());
  return y;
}

}  // namespace rnnlab_gemm
