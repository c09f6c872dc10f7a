// Micro-benchmark behind the int16 precision of the CPU similarity map (bench/README.md, "Similarity map"):
// throughput of register-blocked 6 x 16 AVX2 micro-kernels, one thread, panels in L1/L2 (K = 256 features):
// float32 FMA vs int16 pairs with VPMADDWD + VPADDD (int32 accumulators as GCC vector type, and as __m256i,
// which GCC 12 spills), and the bare instruction peaks (independent chains, no loads).
// Build and run: g++ -O3 -mavx2 -mfma -std=c++17 bench/microkernel_int16.cpp -o /tmp/mk && /tmp/mk
// (GMAC/s per CPU second, best of 5; one multiply-add = one int16 or float32 product summed).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace {

constexpr int MR = 6, NV = 2, K = 256, kPanels = 8, kReps = 4000, kTrials = 5;
typedef int32_t v8si __attribute__((vector_size(32)));

double seconds() {  // CPU time of this process: less sensitive than wall time to other jobs on the machine
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

__attribute__((noinline)) void fp32_tile(const float* A, const float* B, float* out) {
  __m256 c[MR][NV] = {};
  for (int k = 0; k < K; ++k, A += MR, B += NV * 8) {
    const __m256 b0 = _mm256_loadu_ps(B), b1 = _mm256_loadu_ps(B + 8);
    for (int r = 0; r < MR; ++r) {
      const __m256 a = _mm256_broadcast_ss(A + r);
      c[r][0] = _mm256_fmadd_ps(a, b0, c[r][0]);
      c[r][1] = _mm256_fmadd_ps(a, b1, c[r][1]);
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) _mm256_storeu_ps(out + (r * NV + v) * 8, c[r][v]);
}

// One k step = two int16 features per 32-bit entry.
template <class Acc>
__attribute__((noinline)) void int16_tile(const int32_t* A, const int32_t* B, int32_t* out) {
  Acc c[MR][NV] = {};
  for (int k = 0; k < K / 2; ++k, A += MR, B += NV * 8) {
    const __m256i b0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B));
    const __m256i b1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(B + 8));
    for (int r = 0; r < MR; ++r) {
      const __m256i a = _mm256_set1_epi32(A[r]);
      c[r][0] = Acc(_mm256_add_epi32(__m256i(c[r][0]), _mm256_madd_epi16(a, b0)));
      c[r][1] = Acc(_mm256_add_epi32(__m256i(c[r][1]), _mm256_madd_epi16(a, b1)));
    }
  }
  for (int r = 0; r < MR; ++r)
    for (int v = 0; v < NV; ++v) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + (r * NV + v) * 8), __m256i(c[r][v]));
    }
}

template <class F>
double best_gmacs(F run, double macs) {
  double best = 1e30;
  for (int t = 0; t < kTrials; ++t) {
    const double t0 = seconds();
    run();
    best = std::min(best, seconds() - t0);
  }
  return macs / best / 1e9;
}

// The empty asm statements keep every accumulator in a register and opaque to the compiler (no hoisting of
// the loop-invariant products, no folding of the integer sums).
__attribute__((noinline)) __m256 fma_peak(long n, __m256 x) {  // 10 independent FMA chains
  __m256 s0 = x, s1 = x, s2 = x, s3 = x, s4 = x, s5 = x, s6 = x, s7 = x, s8 = x, s9 = x;
  for (long i = 0; i < n; ++i) {
    __asm__ volatile("" : "+x"(s0), "+x"(s1), "+x"(s2), "+x"(s3), "+x"(s4), "+x"(s5), "+x"(s6), "+x"(s7));
    __asm__ volatile("" : "+x"(s8), "+x"(s9), "+x"(x));
    s0 = _mm256_fmadd_ps(x, x, s0), s1 = _mm256_fmadd_ps(x, x, s1), s2 = _mm256_fmadd_ps(x, x, s2);
    s3 = _mm256_fmadd_ps(x, x, s3), s4 = _mm256_fmadd_ps(x, x, s4), s5 = _mm256_fmadd_ps(x, x, s5);
    s6 = _mm256_fmadd_ps(x, x, s6), s7 = _mm256_fmadd_ps(x, x, s7), s8 = _mm256_fmadd_ps(x, x, s8);
    s9 = _mm256_fmadd_ps(x, x, s9);
  }
  const __m256 s03 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  const __m256 s47 = _mm256_add_ps(_mm256_add_ps(s4, s5), _mm256_add_ps(s6, s7));
  return _mm256_add_ps(_mm256_add_ps(s03, s47), _mm256_add_ps(s8, s9));
}

__attribute__((noinline)) v8si madd_peak(long n, v8si x) {  // 8 independent VPMADDWD + VPADDD chains
  v8si s0 = x, s1 = x, s2 = x, s3 = x, s4 = x, s5 = x, s6 = x, s7 = x, a = x, b = x + 1, c = x + 2, d = x + 3;
  const auto madd = [](v8si u, v8si v) { return v8si(_mm256_madd_epi16(__m256i(u), __m256i(v))); };
  for (long i = 0; i < n; ++i) {
    __asm__ volatile("" : "+x"(s0), "+x"(s1), "+x"(s2), "+x"(s3), "+x"(s4), "+x"(s5), "+x"(s6), "+x"(s7));
    __asm__ volatile("" : "+x"(a), "+x"(b), "+x"(c), "+x"(d));  // eight distinct products per iteration
    s0 += madd(a, b), s1 += madd(a, c), s2 += madd(a, d), s3 += madd(b, c), s4 += madd(b, d), s5 += madd(c, d);
    s6 += madd(a, a), s7 += madd(b, b);
  }
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

}  // namespace

int main() {
  const long n = 50000000;
  volatile float sink_f = 0;
  volatile int sink_i = 0;
  const double fma = best_gmacs([&] { sink_f = _mm256_cvtss_f32(fma_peak(n, _mm256_set1_ps(1e-9f))); }, 80.0 * n);
  const double madd = best_gmacs([&] { sink_i = madd_peak(n, v8si{} + 3)[0]; }, 128.0 * n);
  std::printf("peak (no loads): FMA %.1f GMAC/s, VPMADDWD+VPADDD %.1f GMAC/s (x%.2f)\n", fma, madd, madd / fma);

  float* A = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * MR * K));
  float* B = static_cast<float*>(std::aligned_alloc(64, sizeof(float) * NV * 8 * K * kPanels));
  int32_t* Ai = static_cast<int32_t*>(std::aligned_alloc(64, sizeof(int32_t) * MR * K / 2));
  int32_t* Bi = static_cast<int32_t*>(std::aligned_alloc(64, sizeof(int32_t) * NV * 8 * K / 2 * kPanels));
  for (int i = 0; i < MR * K; ++i) A[i] = (std::rand() % 100) * 0.01f;
  for (int i = 0; i < NV * 8 * K * kPanels; ++i) B[i] = (std::rand() % 100) * 0.01f;
  for (int i = 0; i < MR * K / 2; ++i) Ai[i] = std::rand();
  for (int i = 0; i < NV * 8 * K / 2 * kPanels; ++i) Bi[i] = std::rand();
  float out_f[MR * NV * 8];
  int32_t out_i[MR * NV * 8];
  const double macs = double(kReps) * kPanels * MR * NV * 8 * K;
  const double f32 = best_gmacs([&] {
    for (int r = 0; r < kReps; ++r)
      for (int p = 0; p < kPanels; ++p) fp32_tile(A, B + p * NV * 8 * K, out_f);
  }, macs);
  const double i16 = best_gmacs([&] {
    for (int r = 0; r < kReps; ++r)
      for (int p = 0; p < kPanels; ++p) int16_tile<v8si>(Ai, Bi + p * NV * 8 * K / 2, out_i);
  }, macs);
  const double i16_spilled = best_gmacs([&] {
    for (int r = 0; r < kReps; ++r)
      for (int p = 0; p < kPanels; ++p) int16_tile<__m256i>(Ai, Bi + p * NV * 8 * K / 2, out_i);
  }, macs);
  std::printf("6 x 16 micro-kernel: fp32 FMA %.1f GMAC/s, int16 %.1f GMAC/s (x%.2f), int16 with __m256i "
              "accumulators %.1f GMAC/s (x%.2f)  [%g %d]\n",
              f32, i16, i16 / f32, i16_spilled, i16_spilled / f32, double(out_f[3]), out_i[5]);
  return 0;
}
