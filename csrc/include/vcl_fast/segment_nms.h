// Greedy non-maximum suppression of segment boxes [q_s, r_s, q_e, r_e] (float32), class-agnostic, with
// optional integer groups (boxes of different groups never suppress each other).
//
// Rules, shared with the numpy reference in vcl_fast/ops/nms.py:
//   - area = (q_e - q_s) * (r_e - r_s), no +1; IoU is computed in float32 and IoU 0/0 is 0;
//   - a box is suppressed by a kept box of its group when IoU > iou_threshold (exactly at it: kept),
//     the threshold compared exactly (as a double);
//   - boxes are visited by decreasing score, equal scores in index order (-0.0 equals 0.0); the kept
//     indices are written in that order across all groups.
#pragma once

#include <cstdint>

namespace vcl_fast {

// Ok, or InvalidValues when a box or score is NaN/inf or a box has q_e < q_s or r_e < r_s (nothing
// useful is in `keep` then; the Python layer finds and reports the offending value).
enum class NmsStatus : int { Ok = 0, InvalidValues = 1 };

// boxes: (n, 4) C-contiguous; scores: (n,); groups: (n,) or nullptr for one group; keep: (n,) output of
// which the first *num_kept entries are the kept indices. 0 <= n < 2^31, iou_threshold >= 0 (not NaN).
NmsStatus segment_nms_cpu(const float* boxes, const float* scores, const int64_t* groups, int64_t n,
                          double iou_threshold, int64_t* keep, int64_t* num_kept);

// Same on a CUDA device: every array pointer is device memory of the current device, and the work is
// queued on `stream` (a cudaStream_t, 0 for the legacy default stream). Sorting, the IoU mask and the
// greedy walk over it all run on the device; the call returns once the stream has finished, after one
// device-to-host copy of the kept count and status. Throws std::runtime_error on CUDA errors.
NmsStatus segment_nms_cuda(const float* boxes, const float* scores, const int64_t* groups, int64_t n,
                           double iou_threshold, int64_t* keep, int64_t* num_kept, std::uintptr_t stream);

// The float32 value t such that, for every float32 iou, (iou > t) == (double(iou) > iou_threshold).
float float_iou_threshold(double iou_threshold);

}  // namespace vcl_fast
