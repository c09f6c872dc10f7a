// Greedy suppression over one group of boxes already sorted by decreasing score: the SIMD-level
// variants behind segment_nms_cpu (scalar in segment_nms.cpp, segment_nms_avx2.cpp, segment_nms_avx512.cpp).
#pragma once

#include <cstdint>

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

// Keeps the first live box, drops the later live boxes whose IoU with it is > threshold (float32 IoU,
// 0/0 = 0), and repeats with the next survivor. The arrays are compacted in place. Writes the ids of
// the kept boxes in order to `kept` and returns how many there are.
int32_t greedy_nms_scalar(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept);
int32_t greedy_nms_avx2(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept);
int32_t greedy_nms_avx512(SortedBoxes boxes, int32_t m, float threshold, int32_t* kept);

}  // namespace vcl_fast::cpu
