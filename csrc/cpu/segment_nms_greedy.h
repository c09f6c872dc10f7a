// Greedy suppression over one group of boxes already sorted by decreasing score, and the gather that
// lays them out for it: the SIMD-level variants behind segment_nms_cpu (scalar in segment_nms.cpp,
// segment_nms_avx2.cpp, segment_nms_avx512.cpp).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace vcl_fast::cpu {

// Writable slack each array of SortedBoxes has past its m boxes (one AVX-512 vector).
constexpr int32_t kNmsPadding = 16;

// m boxes as a structure of arrays, in visiting order; id is the caller's index of each box.
struct SortedBoxes {
  float* q_s;
  float* r_s;
  float* q_e;
  float* r_e;
  float* area;  // (q_e - q_s) * (r_e - r_s)
  int32_t* id;
};

// Fills sorted[0..m) with the boxes order[0..m) of a C-contiguous (n, 4) array: coordinates, area and
// id = order[j]. Returns false when one of them has a NaN/inf coordinate, q_e < q_s or r_e < r_s.
// The AVX2 version also serves the AVX-512 level.
bool gather_boxes_scalar(const float* boxes, const int32_t* order, int32_t m, SortedBoxes sorted);
bool gather_boxes_avx2(const float* boxes, const int32_t* order, int32_t m, SortedBoxes sorted);

// True for NaN and +-inf (all exponent bits set).
inline bool not_finite(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  return (bits & 0x7F800000u) == 0x7F800000u;
}

// IoU of boxes i and j above the threshold (float32 IoU, 0/0 = 0): the float32 operations of every
// variant's suppression test, so all of them keep exactly the same boxes.
inline bool iou_above(const SortedBoxes& b, int32_t i, int32_t j, float threshold) {
  const float width = std::max(std::min(b.q_e[i], b.q_e[j]) - std::max(b.q_s[i], b.q_s[j]), 0.0f);
  const float height = std::max(std::min(b.r_e[i], b.r_e[j]) - std::max(b.r_s[i], b.r_s[j]), 0.0f);
  const float inter = width * height;
  // inter == 0 (disjoint, touching or zero-area boxes) means IoU 0, never above the threshold.
  return inter > 0.0f && inter / ((b.area[i] + b.area[j]) - inter) > threshold;
}

// Where a greedy suppression stands: boxes [0, head) are decided (num_kept of them kept, their ids at the
// front of `kept`), the live boxes still to visit are [head, end) (compacted, in visiting order).
struct GreedyProgress {
  int32_t head, end, num_kept;
};

// Greedy suppression from `from`: keeps the first live box, drops the later live boxes whose IoU with it is
// > threshold, and repeats with the next survivor, compacting the arrays in place and appending kept ids
// to `kept`. Stops when every box is decided (head == end) or, after a pass, once it has made more than
// max_tests box-against-box tests (the caller then finishes with greedy_nms_windowed).
GreedyProgress greedy_nms_scalar(SortedBoxes boxes, GreedyProgress from, float threshold, int32_t* kept,
                                 int64_t max_tests);
GreedyProgress greedy_nms_avx2(SortedBoxes boxes, GreedyProgress from, float threshold, int32_t* kept,
                               int64_t max_tests);
GreedyProgress greedy_nms_avx512(SortedBoxes boxes, GreedyProgress from, float threshold, int32_t* kept,
                                 int64_t max_tests);

}  // namespace vcl_fast::cpu
