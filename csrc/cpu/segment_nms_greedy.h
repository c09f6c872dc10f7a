// Greedy suppression over one group of boxes already sorted by decreasing score, and the gather that
// lays them out for it: the SIMD-level variants behind segment_nms_cpu (scalar in segment_nms.cpp,
// segment_nms_avx2.cpp, segment_nms_avx512.cpp).
#pragma once

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

// Keeps the first live box, drops the later live boxes whose IoU with it is > threshold (float32 IoU,
// 0/0 = 0), and repeats with the next survivor. The arrays are compacted in place. Writes the ids of
// the kept boxes in order to `kept` and returns how many there are.
int32_t greedy_nms_scalar(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept);
int32_t greedy_nms_avx2(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept);
int32_t greedy_nms_avx512(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept);

}  // namespace vcl_fast::cpu
