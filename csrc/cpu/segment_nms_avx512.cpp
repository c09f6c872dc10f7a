// greedy_nms_avx512: the greedy suppression loop of segment_nms_cpu over 16 boxes per step (AVX-512F).
// Same float32 arithmetic as greedy_nms_scalar, so both keep exactly the same boxes.
// GCC 12's AVX-512 headers trip -Wmaybe-uninitialized on their own _mm512_undefined_ps (GCC bug 105593).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <cstdint>

#include "cpu/segment_nms_greedy.h"

namespace vcl_fast::cpu {

int32_t greedy_nms_avx512(SortedBoxes b, int32_t m, float threshold, int32_t* kept) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512 limit = _mm512_set1_ps(threshold);
  int32_t num_kept = 0;
  int32_t end = m;  // live boxes are [head, end)
  for (int32_t head = 0; head < end; ++head) {
    kept[num_kept++] = b.id[head];
    const __m512 q_s = _mm512_set1_ps(b.q_s[head]), r_s = _mm512_set1_ps(b.r_s[head]);
    const __m512 q_e = _mm512_set1_ps(b.q_e[head]), r_e = _mm512_set1_ps(b.r_e[head]);
    const __m512 area = _mm512_set1_ps(b.area[head]);
    int32_t w = head + 1;  // survivors are packed to [head + 1, w)
    // Tests boxes [r, r + 16) (the lanes in `valid`) against the head box and packs the survivors at w.
    const auto scan = [&](int32_t r, __mmask16 valid) {
      const __m512 o_qs = _mm512_loadu_ps(b.q_s + r), o_qe = _mm512_loadu_ps(b.q_e + r);
      const __m512 width = _mm512_sub_ps(_mm512_min_ps(q_e, o_qe), _mm512_max_ps(q_s, o_qs));
      __mmask16 drop = 0;
      // Boxes disjoint from the head along q have IoU 0: the full test runs only when a lane overlaps.
      if (_mm512_mask_cmp_ps_mask(valid, width, zero, _CMP_GT_OQ) != 0) {
        const __m512 o_rs = _mm512_loadu_ps(b.r_s + r), o_re = _mm512_loadu_ps(b.r_e + r);
        const __m512 height = _mm512_max_ps(_mm512_sub_ps(_mm512_min_ps(r_e, o_re), _mm512_max_ps(r_s, o_rs)), zero);
        const __m512 inter = _mm512_mul_ps(_mm512_max_ps(width, zero), height);
        const __m512 o_area = _mm512_loadu_ps(b.area + r);
        // inter == 0 gives 0 or 0/0 = NaN, neither compares above the threshold (IoU 0).
        const __m512 iou = _mm512_div_ps(inter, _mm512_sub_ps(_mm512_add_ps(area, o_area), inter));
        drop = _mm512_mask_cmp_ps_mask(valid, iou, limit, _CMP_GT_OQ);
      }
      if (w == r && drop == 0) {  // nothing dropped so far: survivors are already in place
        w += __builtin_popcount(valid);
        return;
      }
      const __mmask16 survive = static_cast<__mmask16>(valid & ~drop);
      // Whole-vector stores at w <= r only overwrite lanes already loaded (arrays are padded past m).
      _mm512_storeu_ps(b.q_s + w, _mm512_maskz_compress_ps(survive, o_qs));
      _mm512_storeu_ps(b.q_e + w, _mm512_maskz_compress_ps(survive, o_qe));
      _mm512_storeu_ps(b.r_s + w, _mm512_maskz_compress_ps(survive, _mm512_loadu_ps(b.r_s + r)));
      _mm512_storeu_ps(b.r_e + w, _mm512_maskz_compress_ps(survive, _mm512_loadu_ps(b.r_e + r)));
      _mm512_storeu_ps(b.area + w, _mm512_maskz_compress_ps(survive, _mm512_loadu_ps(b.area + r)));
      _mm512_storeu_si512(b.id + w, _mm512_maskz_compress_epi32(survive, _mm512_loadu_si512(b.id + r)));
      w += __builtin_popcount(survive);
    };
    int32_t r = head + 1;
    for (; r + 16 <= end; r += 16) scan(r, 0xFFFF);
    if (r < end) scan(r, static_cast<__mmask16>((1u << (end - r)) - 1u));
    end = w;
  }
  return num_kept;
}

}  // namespace vcl_fast::cpu
