// greedy_nms_avx2: the greedy suppression loop of segment_nms_cpu, 8 boxes per step (AVX2).
// Same float32 arithmetic as greedy_nms_scalar, so both keep exactly the same boxes.
#include <immintrin.h>

#include <cstdint>

#include "cpu/segment_nms_greedy_simd.h"

namespace vcl_fast::cpu {
namespace {

// kCompress.lanes[mask] lists the set lanes of an 8-bit mask first: the permutation that packs the
// lanes a mask keeps to the front of a vector.
struct CompressTable {
  alignas(32) int32_t lanes[256][8];
};

constexpr CompressTable make_compress_table() {
  CompressTable table{};
  for (int mask = 0; mask < 256; ++mask) {
    int k = 0;
    for (int lane = 0; lane < 8; ++lane) {
      if ((mask >> lane) & 1) table.lanes[mask][k++] = lane;
    }
  }
  return table;
}

constexpr CompressTable kCompress = make_compress_table();

struct Avx2 : VectorOps<8> {
  using Mask = unsigned;
  static constexpr Mask kAllLanes = 0xFFu;

  static Mask greater(Float a, Float b) {
    return static_cast<Mask>(_mm256_movemask_ps(_mm256_cmp_ps(__m256(a), __m256(b), _CMP_GT_OQ)));
  }
  static __m256i permutation(Mask keep) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[keep]));
  }
  static void compress(const float* src, float* dst, Mask keep) {
    _mm256_storeu_ps(dst, _mm256_permutevar8x32_ps(_mm256_loadu_ps(src), permutation(keep)));
  }
  static void compress(const int32_t* src, int32_t* dst, Mask keep) {
    const __m256i values = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(src));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permutevar8x32_epi32(values, permutation(keep)));
  }
};

}  // namespace

int32_t greedy_nms_avx2(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept) {
  return greedy_nms_simd<Avx2>(boxes, m, threshold, kept);
}

}  // namespace vcl_fast::cpu
