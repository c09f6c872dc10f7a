// greedy_nms_avx2: the greedy suppression loop of segment_nms_cpu over 8 boxes per step (AVX2).
// Same float32 arithmetic as greedy_nms_scalar, so both keep exactly the same boxes.
#include <immintrin.h>

#include <cstdint>

#include "cpu/segment_nms_greedy.h"

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

}  // namespace

int32_t greedy_nms_avx2(SortedBoxes b, int32_t m, float threshold, int32_t* kept) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 limit = _mm256_set1_ps(threshold);
  int32_t num_kept = 0;
  int32_t end = m;  // live boxes are [head, end)
  for (int32_t head = 0; head < end; ++head) {
    kept[num_kept++] = b.id[head];
    const __m256 q_s = _mm256_set1_ps(b.q_s[head]), r_s = _mm256_set1_ps(b.r_s[head]);
    const __m256 q_e = _mm256_set1_ps(b.q_e[head]), r_e = _mm256_set1_ps(b.r_e[head]);
    const __m256 area = _mm256_set1_ps(b.area[head]);
    int32_t w = head + 1;  // survivors are packed to [head + 1, w)
    // Tests boxes [r, r + 8) (the lanes in `valid`) against the head box and packs the survivors at w.
    const auto scan = [&](int32_t r, unsigned valid) {
      const __m256 o_qs = _mm256_loadu_ps(b.q_s + r), o_qe = _mm256_loadu_ps(b.q_e + r);
      const __m256 width = _mm256_sub_ps(_mm256_min_ps(q_e, o_qe), _mm256_max_ps(q_s, o_qs));
      unsigned drop = 0;
      // Boxes disjoint from the head along q have IoU 0: the full test runs only when a lane overlaps.
      if (static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(width, zero, _CMP_GT_OQ))) & valid) {
        const __m256 o_rs = _mm256_loadu_ps(b.r_s + r), o_re = _mm256_loadu_ps(b.r_e + r);
        const __m256 height = _mm256_max_ps(_mm256_sub_ps(_mm256_min_ps(r_e, o_re), _mm256_max_ps(r_s, o_rs)), zero);
        const __m256 inter = _mm256_mul_ps(_mm256_max_ps(width, zero), height);
        const __m256 o_area = _mm256_loadu_ps(b.area + r);
        // inter == 0 gives 0 or 0/0 = NaN, neither compares above the threshold (IoU 0).
        const __m256 iou = _mm256_div_ps(inter, _mm256_sub_ps(_mm256_add_ps(area, o_area), inter));
        drop = static_cast<unsigned>(_mm256_movemask_ps(_mm256_cmp_ps(iou, limit, _CMP_GT_OQ))) & valid;
      }
      if (w == r && drop == 0) {  // nothing dropped so far: survivors are already in place
        w += __builtin_popcount(valid);
        return;
      }
      const unsigned survive = valid & ~drop;
      const __m256i perm = _mm256_load_si256(reinterpret_cast<const __m256i*>(kCompress.lanes[survive]));
      // Whole-vector stores at w <= r only overwrite lanes already loaded (arrays are padded past m).
      _mm256_storeu_ps(b.q_s + w, _mm256_permutevar8x32_ps(o_qs, perm));
      _mm256_storeu_ps(b.q_e + w, _mm256_permutevar8x32_ps(o_qe, perm));
      _mm256_storeu_ps(b.r_s + w, _mm256_permutevar8x32_ps(_mm256_loadu_ps(b.r_s + r), perm));
      _mm256_storeu_ps(b.r_e + w, _mm256_permutevar8x32_ps(_mm256_loadu_ps(b.r_e + r), perm));
      _mm256_storeu_ps(b.area + w, _mm256_permutevar8x32_ps(_mm256_loadu_ps(b.area + r), perm));
      const __m256i o_id = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.id + r));
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(b.id + w), _mm256_permutevar8x32_epi32(o_id, perm));
      w += __builtin_popcount(survive);
    };
    int32_t r = head + 1;
    for (; r + 8 <= end; r += 8) scan(r, 0xFFu);
    if (r < end) scan(r, (1u << (end - r)) - 1u);
    end = w;
  }
  return num_kept;
}

}  // namespace vcl_fast::cpu
