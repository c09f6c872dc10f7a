// greedy_nms_avx512: the greedy suppression loop of segment_nms_cpu, 16 boxes per step (AVX-512F).
// Same float32 arithmetic as greedy_nms_scalar, so both keep exactly the same boxes.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_ps (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#include "cpu/segment_nms_greedy_simd.h"

namespace vcl_fast::cpu {
namespace {

struct Avx512 : VectorOps<16> {
  using Mask = __mmask16;
  static constexpr Mask kAllLanes = 0xFFFF;

  static Mask greater(Float a, Float b) { return _mm512_cmp_ps_mask(__m512(a), __m512(b), _CMP_GT_OQ); }
  static void compress(const float* src, float* dst, Mask keep) {
    _mm512_storeu_ps(dst, _mm512_maskz_compress_ps(keep, _mm512_loadu_ps(src)));
  }
  static void compress(const int32_t* src, int32_t* dst, Mask keep) {
    _mm512_storeu_si512(dst, _mm512_maskz_compress_epi32(keep, _mm512_loadu_si512(src)));
  }
};

}  // namespace

GreedyProgress greedy_nms_avx512(SortedBoxes boxes, GreedyProgress from, float threshold, int32_t* kept,
                               int64_t max_tests) {
  return greedy_nms_simd<Avx512>(boxes, from, threshold, kept, max_tests);
}

}  // namespace vcl_fast::cpu
