// The vectorised greedy suppression loop shared by greedy_nms_avx2 and greedy_nms_avx512, written once
// against a vector-traits type V. Include it only from the *_avx2.cpp / *_avx512.cpp files, which are
// compiled for that instruction set; everything here is a template of V, so the two instantiations
// never mix.
//
// V is VectorOps<kLanes> (lane-wise float32 arithmetic) plus, from the ISA file: Mask (an unsigned lane
// bit mask), kAllLanes, greater(a, b) -> Mask, and compress(src, dst, keep) for float and int32 arrays,
// which packs the `keep` lanes of kLanes values at src to the front of dst (dst <= src; it may write
// kLanes values at dst).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "cpu/segment_nms_greedy.h"

namespace vcl_fast::cpu {

// Lane-wise float32 operations on a GCC/Clang vector of kLanes floats: each is one IEEE operation per
// lane, like the scalar code (min/max return the second operand on NaN, as minps/maxps do).
template <int32_t kLanes_>
struct VectorOps {
  typedef float Float __attribute__((vector_size(4 * kLanes_)));
  static constexpr int32_t kLanes = kLanes_;

  static Float zero() { return Float{}; }
  static Float set1(float x) { return Float{} + x; }
  static Float load(const float* p) {
    Float v;
    std::memcpy(&v, p, sizeof v);
    return v;
  }
  static Float min(Float a, Float b) { return a < b ? a : b; }
  static Float max(Float a, Float b) { return a > b ? a : b; }
  static Float add(Float a, Float b) { return a + b; }
  static Float sub(Float a, Float b) { return a - b; }
  static Float mul(Float a, Float b) { return a * b; }
  static Float div(Float a, Float b) { return a / b; }
};

// Boxes tested per pass: the first live boxes that do not suppress each other are all kept, and a
// single pass over the other live boxes tests them against every one of these heads, so loads and
// compaction are shared by the heads.
constexpr int32_t kHeadsPerPass = 4;

// greedy_nms_<isa> (segment_nms_greedy.h); the lanes compute iou_above's float32 operations.
template <class V>
GreedyProgress greedy_nms_simd(SortedBoxes b, GreedyProgress from, float threshold, int32_t* kept,
                               int64_t max_tests) {
  using Float = typename V::Float;
  using Mask = typename V::Mask;
  const Float zero = V::zero();
  const Float limit = V::set1(threshold);
  int32_t num_kept = from.num_kept;
  int32_t end = from.end;  // live boxes are [head, end)
  int32_t head = from.head;
  int64_t tests = 0;
  while (head < end && tests <= max_tests) {
    // Heads: live boxes [head, head + heads), each not suppressed by the heads before it (all kept).
    int32_t heads = 1;
    for (; heads < kHeadsPerPass && head + heads < end; ++heads) {
      bool suppressed = false;
      for (int32_t h = 0; h < heads && !suppressed; ++h) suppressed = iou_above(b, head + h, head + heads, threshold);
      if (suppressed) break;  // the pass below drops it
    }
    Float q_s[kHeadsPerPass], r_s[kHeadsPerPass], q_e[kHeadsPerPass], r_e[kHeadsPerPass], area[kHeadsPerPass];
    for (int32_t h = 0; h < heads; ++h) kept[num_kept++] = b.id[head + h];
    for (int32_t h = 0; h < kHeadsPerPass; ++h) {
      const int32_t box = head + (h < heads ? h : 0);  // spare slots repeat the first head (same verdicts)
      q_s[h] = V::set1(b.q_s[box]);
      r_s[h] = V::set1(b.r_s[box]);
      q_e[h] = V::set1(b.q_e[box]);
      r_e[h] = V::set1(b.r_e[box]);
      area[h] = V::set1(b.area[box]);
    }
    int32_t w = head + heads;  // survivors are packed to [head + heads, w)
    // Tests boxes [r, r + kLanes) (the lanes in `valid`) against the heads and packs the survivors at w.
    const auto scan = [&](int32_t r, Mask valid) {
      const Float o_qs = V::load(b.q_s + r), o_qe = V::load(b.q_e + r);
      Mask drop = 0;
#pragma GCC unroll 16
      for (int32_t h = 0; h < kHeadsPerPass; ++h) {
        const Float width = V::sub(V::min(q_e[h], o_qe), V::max(q_s[h], o_qs));
        // Boxes disjoint from the head along q have IoU 0: the rest only runs when a lane overlaps.
        if ((V::greater(width, zero) & valid) == 0) continue;
        const Float o_rs = V::load(b.r_s + r), o_re = V::load(b.r_e + r), o_area = V::load(b.area + r);
        const Float height = V::max(V::sub(V::min(r_e[h], o_re), V::max(r_s[h], o_rs)), zero);
        const Float inter = V::mul(V::max(width, zero), height);
        // inter == 0 gives 0 or 0/0 = NaN, neither of which compares above the threshold (IoU 0).
        const Float iou = V::div(inter, V::sub(V::add(area[h], o_area), inter));
        drop |= V::greater(iou, limit) & valid;
      }
      if (w == r && drop == 0) {  // nothing dropped so far in this pass: survivors are already in place
        w += __builtin_popcount(valid);
        return;
      }
      const Mask survive = static_cast<Mask>(valid & ~drop);
      V::compress(b.q_s + r, b.q_s + w, survive);
      V::compress(b.r_s + r, b.r_s + w, survive);
      V::compress(b.q_e + r, b.q_e + w, survive);
      V::compress(b.r_e + r, b.r_e + w, survive);
      V::compress(b.area + r, b.area + w, survive);
      V::compress(b.id + r, b.id + w, survive);
      w += __builtin_popcount(survive);
    };
    int32_t r = head + heads;
    tests += static_cast<int64_t>(end - r) * heads;
    for (; r + V::kLanes <= end; r += V::kLanes) scan(r, V::kAllLanes);
    if (r < end) scan(r, static_cast<Mask>((1u << (end - r)) - 1u));
    end = w;
    head += heads;
  }
  return {head, end, num_kept};
}

}  // namespace vcl_fast::cpu
