// greedy_nms_avx2: the greedy suppression loop of segment_nms_cpu, 8 boxes per step (AVX2).
// Same float32 arithmetic as greedy_nms_scalar, so both keep exactly the same boxes.
#include <immintrin.h>

#include <cfloat>
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

bool gather_boxes_avx2(const float* boxes, const int32_t* order, int32_t m, SortedBoxes sorted) {
  const auto row = [&](int32_t j) { return _mm_loadu_ps(boxes + 4 * static_cast<int64_t>(order[j])); };
  // |x| > FLT_MAX or unordered: inf or NaN.
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 largest = _mm256_set1_ps(FLT_MAX);
  const auto not_finite = [&](__m256 v) { return _mm256_cmp_ps(_mm256_and_ps(v, abs_mask), largest, _CMP_NLE_UQ); };
  __m256 bad = _mm256_setzero_ps();
  int32_t j = 0;
  for (; j + 8 <= m; j += 8) {
    // Rows j..j+7 as [j | j+4], ..., [j+3 | j+7], then a 4x4 transpose within each 128-bit half.
    const __m256 t0 = _mm256_insertf128_ps(_mm256_castps128_ps256(row(j)), row(j + 4), 1);
    const __m256 t1 = _mm256_insertf128_ps(_mm256_castps128_ps256(row(j + 1)), row(j + 5), 1);
    const __m256 t2 = _mm256_insertf128_ps(_mm256_castps128_ps256(row(j + 2)), row(j + 6), 1);
    const __m256 t3 = _mm256_insertf128_ps(_mm256_castps128_ps256(row(j + 3)), row(j + 7), 1);
    const __m256 u0 = _mm256_unpacklo_ps(t0, t1), u1 = _mm256_unpackhi_ps(t0, t1);
    const __m256 u2 = _mm256_unpacklo_ps(t2, t3), u3 = _mm256_unpackhi_ps(t2, t3);
    const __m256 q_s = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 r_s = _mm256_shuffle_ps(u0, u2, _MM_SHUFFLE(3, 2, 3, 2));
    const __m256 q_e = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(1, 0, 1, 0));
    const __m256 r_e = _mm256_shuffle_ps(u1, u3, _MM_SHUFFLE(3, 2, 3, 2));
    bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_or_ps(not_finite(q_s), not_finite(r_s)),
                                         _mm256_or_ps(not_finite(q_e), not_finite(r_e))));
    bad = _mm256_or_ps(bad, _mm256_or_ps(_mm256_cmp_ps(q_e, q_s, _CMP_LT_OQ), _mm256_cmp_ps(r_e, r_s, _CMP_LT_OQ)));
    _mm256_storeu_ps(sorted.q_s + j, q_s);
    _mm256_storeu_ps(sorted.r_s + j, r_s);
    _mm256_storeu_ps(sorted.q_e + j, q_e);
    _mm256_storeu_ps(sorted.r_e + j, r_e);
    _mm256_storeu_ps(sorted.area + j, _mm256_mul_ps(_mm256_sub_ps(q_e, q_s), _mm256_sub_ps(r_e, r_s)));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(sorted.id + j),
                        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(order + j)));
  }
  const SortedBoxes rest{sorted.q_s + j, sorted.r_s + j, sorted.q_e + j, sorted.r_e + j, sorted.area + j, sorted.id + j};
  return gather_boxes_scalar(boxes, order + j, m - j, rest) && _mm256_movemask_ps(bad) == 0;
}

GreedyProgress greedy_nms_avx2(SortedBoxes boxes, GreedyProgress from, float threshold, int32_t* kept,
                               int64_t max_tests) {
  return greedy_nms_simd<Avx2>(boxes, from, threshold, kept, max_tests);
}

}  // namespace vcl_fast::cpu
