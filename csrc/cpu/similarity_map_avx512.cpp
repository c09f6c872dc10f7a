// AVX-512 (F) + F16C variant of the CPU similarity map: 12 x 32 register tile (24 accumulators), float32
// (the int16 precision runs the AVX2 variant).
#include <immintrin.h>

#include <cstdint>

#include "cpu/similarity_map_kernel.h"
#include "cpu/transpose8_avx.h"

namespace vcl_fast::cpu {
namespace {

struct Avx512 {
  using value = float;
  static constexpr int width = 16;
  using reg = __m512;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg load_half(const uint16_t* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }
  static void store(float* p, reg a) { _mm512_storeu_ps(p, a); }
  static reg broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static reg max(reg a, reg b) { return _mm512_max_ps(a, b); }
  static reg add(reg a, reg b) { return _mm512_add_ps(a, b); }
  static reg sub(reg a, reg b) { return _mm512_sub_ps(a, b); }
  static float sum(reg a) { return _mm512_reduce_add_ps(a); }
};

}  // namespace

void similarity_map_avx512(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                           int32_t* flags) {
  if (layout.precision == Precision::Int16) return similarity_map_avx2(pairs, num_pairs, layout, flags);
  SimilarityKernel<Float32Panels<Avx512, Transpose8Avx, 12, 2>>::run(pairs, num_pairs, layout, flags);
}

}  // namespace vcl_fast::cpu
