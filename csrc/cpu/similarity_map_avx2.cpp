// AVX2 + FMA + F16C variant of the CPU similarity map: 6 x 16 register tile (12 accumulators).
#include <immintrin.h>

#include <cstdint>

#include "cpu/similarity_map_kernel.h"
#include "cpu/transpose8_avx.h"

namespace vcl_fast::cpu {
namespace {

struct Avx2 {
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

}  // namespace

void similarity_map_avx2(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                         int32_t* flags) {
  SimilarityKernel<Avx2, Transpose8Avx, 6, 2>::run(pairs, num_pairs, layout, flags);
}

}  // namespace vcl_fast::cpu
