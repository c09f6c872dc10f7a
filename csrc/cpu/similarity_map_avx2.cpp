// AVX2 + FMA + F16C variant of the CPU similarity map: 6 x 16 register tile (12 accumulators), float32 FMA or
// int16-pair multiply-add (VPMADDWD + VPADDD).
#include <immintrin.h>

#include <cstdint>

#include "cpu/similarity_map_kernel.h"
#include "cpu/transpose8_avx.h"

namespace vcl_fast::cpu {
namespace {

struct Avx2 {
  using value = float;
  static constexpr int width = 8;
  using reg = __m256;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg load_half(const uint16_t* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }
  static void store(float* p, reg a) { _mm256_storeu_ps(p, a); }
  static reg broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm256_max_ps(a, b); }
  static reg add(reg a, reg b) { return _mm256_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm256_sub_ps(a, b); }
  static float sum(reg a) {
    const __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    const __m128 s2 = _mm_add_ps(s, _mm_movehl_ps(s, s));
    return _mm_cvtss_f32(_mm_add_ss(s2, _mm_movehdup_ps(s2)));
  }
};

// Eight int32 lanes; fma is the int16-pair multiply-add. reg is GCC's vector type rather than __m256i: with
// __m256i accumulators GCC 12 spilled the 6 x 16 tile to the stack (measured 48 vs 78 GMAC/s per core).
struct Avx2Int16 {
  using value = int32_t;
  static constexpr int width = 8;
  typedef int32_t reg __attribute__((vector_size(32)));
  static reg zero() { return reg{}; }
  static reg load(const int32_t* p) { return reg(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p))); }
  static void store(int32_t* p, reg a) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), __m256i(a)); }
  static reg broadcast(const int32_t* p) { return reg(_mm256_set1_epi32(*p)); }
  static reg fma(reg a, reg b, reg c) { return c + reg(_mm256_madd_epi16(__m256i(a), __m256i(b))); }
  static reg max(reg a, reg b) { return reg(_mm256_max_epi32(__m256i(a), __m256i(b))); }
};

}  // namespace

void similarity_map_avx2(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                         int32_t* flags) {
  if (layout.precision == Precision::Int16) {
    SimilarityKernel<Int16Panels<Avx2, Avx2Int16, Transpose8Avx, 6, 2>>::run(pairs, num_pairs, layout, flags);
  } else {
    SimilarityKernel<Float32Panels<Avx2, Transpose8Avx, 6, 2>>::run(pairs, num_pairs, layout, flags);
  }
}

}  // namespace vcl_fast::cpu
