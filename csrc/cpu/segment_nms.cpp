// segment_nms_cpu: input validation, stable radix sort by (group, decreasing score), greedy suppression
// per group (in parallel across groups) and the output in decreasing-score order. The greedy inner loop
// has scalar / AVX2 / AVX-512 variants chosen at run time (cpu_features.h).
#include "include/vcl_fast/segment_nms.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/segment_nms_greedy.h"

namespace vcl_fast {
namespace cpu {

int32_t greedy_nms_scalar(SortedBoxes b, int32_t m, float threshold, int32_t* kept) {
  int32_t num_kept = 0;
  int32_t end = m;  // live boxes are [head, end)
  for (int32_t head = 0; head < end; ++head) {
    kept[num_kept++] = b.id[head];
    int32_t w = head + 1;
    for (int32_t r = head + 1; r < end; ++r) {
      const float width = std::max(std::min(b.q_e[head], b.q_e[r]) - std::max(b.q_s[head], b.q_s[r]), 0.0f);
      const float height = std::max(std::min(b.r_e[head], b.r_e[r]) - std::max(b.r_s[head], b.r_s[r]), 0.0f);
      const float inter = width * height;
      // inter == 0 (disjoint, touching or zero-area boxes) means IoU 0, never above the threshold.
      if (inter > 0.0f && inter / ((b.area[head] + b.area[r]) - inter) > threshold) continue;
      b.q_s[w] = b.q_s[r];
      b.r_s[w] = b.r_s[r];
      b.q_e[w] = b.q_e[r];
      b.r_e[w] = b.r_e[r];
      b.area[w] = b.area[r];
      b.id[w] = b.id[r];
      ++w;
    }
    end = w;
  }
  return num_kept;
}

bool gather_boxes_scalar(const float* boxes, const int32_t* order, int32_t m, SortedBoxes sorted) {
  bool bad = false;
  for (int32_t j = 0; j < m; ++j) {
    const float* box = boxes + 4 * static_cast<int64_t>(order[j]);
    bad |= not_finite(box[0]) | not_finite(box[1]) | not_finite(box[2]) | not_finite(box[3]) |
           (box[2] < box[0]) | (box[3] < box[1]);
    sorted.q_s[j] = box[0];
    sorted.r_s[j] = box[1];
    sorted.q_e[j] = box[2];
    sorted.r_e[j] = box[3];
    sorted.area[j] = (box[2] - box[0]) * (box[3] - box[1]);
    sorted.id[j] = order[j];
  }
  return !bad;
}

}  // namespace cpu

namespace {

using cpu::SortedBoxes;

// The gather and greedy kernels of one SIMD level.
struct Kernels {
  bool (*gather)(const float*, const int32_t*, int32_t, SortedBoxes);
  int32_t (*greedy)(SortedBoxes, int32_t, float, int32_t*);
};

Kernels kernels_for_simd_level() {
  switch (cpu::simd_level()) {
    case cpu::SimdLevel::AVX512: return {cpu::gather_boxes_avx2, cpu::greedy_nms_avx512};
    case cpu::SimdLevel::AVX2: return {cpu::gather_boxes_avx2, cpu::greedy_nms_avx2};
    default: return {cpu::gather_boxes_scalar, cpu::greedy_nms_scalar};
  }
}

// Sort key of a float32 score: larger scores give smaller keys, and -0.0 the same key as 0.0.
uint32_t descending_key(float score) {
  uint32_t bits;
  std::memcpy(&bits, &score, sizeof bits);
  bits = score == 0.0f ? 0u : bits;
  const uint32_t ascending = bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u);
  return ~ascending;
}

// Stable LSD radix sort of items by their upper 32 bits (the lower 32 bits carry a box index), 11 bits
// per pass; passes over a digit that every item shares (e.g. the high digits of small keys) are skipped.
// On return `items` points at the sorted array (one of the two buffers).
void sort_by_upper_bits(uint64_t*& items, uint64_t*& scratch, int64_t n) {
  constexpr int kDigitBits = 11, kPasses = 3;
  constexpr uint32_t kDigitMask = (1u << kDigitBits) - 1;
  thread_local uint32_t counts[kPasses][kDigitMask + 1];
  std::memset(counts, 0, sizeof counts);
  uint32_t(&count)[kPasses][kDigitMask + 1] = counts;
  for (int64_t i = 0; i < n; ++i) {
    const uint32_t key = static_cast<uint32_t>(items[i] >> 32);
    ++count[0][key & kDigitMask];
    ++count[1][(key >> kDigitBits) & kDigitMask];
    ++count[2][key >> (2 * kDigitBits)];
  }
  for (int p = 0; p < kPasses; ++p) {
    const int shift = 32 + kDigitBits * p;
    uint32_t* offset = count[p];
    if (offset[(items[0] >> shift) & kDigitMask] == n) continue;
    uint32_t sum = 0;
    for (uint32_t d = 0; d <= kDigitMask; ++d) {
      const uint32_t c = offset[d];
      offset[d] = sum;
      sum += c;
    }
    const uint64_t* from = items;
    uint64_t* to = scratch;
    for (int64_t i = 0; i < n; ++i) {
      const uint64_t item = from[i];
      to[offset[(item >> shift) & kDigitMask]++] = item;
    }
    std::swap(items, scratch);
  }
}

// Each box's group as a key in [0, 2^32): the offset from the smallest group id when the ids span less
// than 2^32, otherwise the rank of the id among the distinct ids.
void group_keys(const int64_t* groups, int64_t n, uint32_t* keys) {
  const auto [lo, hi] = std::minmax_element(groups, groups + n);
  const uint64_t span = static_cast<uint64_t>(*hi) - static_cast<uint64_t>(*lo);
  if (span <= 0xFFFFFFFFull) {
    for (int64_t i = 0; i < n; ++i) keys[i] = static_cast<uint32_t>(static_cast<uint64_t>(groups[i]) - static_cast<uint64_t>(*lo));
  } else {
    std::vector<int64_t> distinct(groups, groups + n);
    std::sort(distinct.begin(), distinct.end());
    distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
    for (int64_t i = 0; i < n; ++i) {
      keys[i] = static_cast<uint32_t>(std::lower_bound(distinct.begin(), distinct.end(), groups[i]) - distinct.begin());
    }
  }
}

// Scratch memory of one thread, reused across calls; arrays only grow (to the largest input seen).
struct Workspace {
  std::vector<uint64_t> items, scratch;  // radix sort buffers
  std::vector<int32_t> by_score, by_group;
  std::vector<uint32_t> group_keys;
  std::vector<uint8_t> is_kept;
  std::vector<float> coords;  // SortedBoxes' five float arrays, back to back
  std::vector<int32_t> ids, kept;
};

Workspace& thread_workspace() {
  thread_local Workspace workspace;
  return workspace;
}

template <class T>
T* at_least(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(n);
  return v.data();
}

// Greedy NMS over the boxes order[0..m) (indices into the (n, 4) boxes array), in that order, using this
// thread's workspace; returns the number of kept boxes, whose indices are then workspace.kept[0..count),
// or -1 when one of the boxes is not finite or inverted.
int32_t greedy_over(const Kernels& kernels, const float* boxes, const int32_t* order, int32_t m, float threshold,
                    Workspace& workspace) {
  const int64_t stride = static_cast<int64_t>(m) + cpu::kNmsPadding;  // SIMD kernels read past m
  float* c = at_least(workspace.coords, 5 * stride);
  const SortedBoxes sorted{c, c + stride, c + 2 * stride, c + 3 * stride, c + 4 * stride, at_least(workspace.ids, stride)};
  if (!kernels.gather(boxes, order, m, sorted)) return -1;
  return kernels.greedy(sorted, m, threshold, at_least(workspace.kept, m));
}

}  // namespace

float float_iou_threshold(double iou_threshold) {
  if (iou_threshold >= static_cast<double>(FLT_MAX)) return FLT_MAX;  // IoU <= 1 is never above it
  float t = static_cast<float>(iou_threshold);
  if (static_cast<double>(t) > iou_threshold) t = std::nextafter(t, 0.0f);
  return t;
}

NmsStatus segment_nms_cpu(const float* boxes, const float* scores, const int64_t* groups, int64_t n,
                          double iou_threshold, int64_t* keep, int64_t* num_kept) {
  if (n < 0 || n > INT32_MAX) throw std::invalid_argument("segment_nms_cpu: n must be in [0, 2^31)");
  if (!(iou_threshold >= 0.0)) throw std::invalid_argument("segment_nms_cpu: iou_threshold must be >= 0");
  *num_kept = 0;
  if (n == 0) return NmsStatus::Ok;

  Workspace& workspace = thread_workspace();
  // Sort (descending score key << 32 | index) items; the boxes are checked as they are gathered.
  uint64_t* items = at_least(workspace.items, n);
  uint64_t* scratch = at_least(workspace.scratch, n);
  bool bad_score = false;
  for (int64_t i = 0; i < n; ++i) {
    bad_score |= cpu::not_finite(scores[i]);
    items[i] = (static_cast<uint64_t>(descending_key(scores[i])) << 32) | static_cast<uint64_t>(i);
  }
  if (bad_score) return NmsStatus::InvalidValues;

  sort_by_upper_bits(items, scratch, n);
  int32_t* by_score = at_least(workspace.by_score, n);
  for (int64_t k = 0; k < n; ++k) by_score[k] = static_cast<int32_t>(items[k]);

  const Kernels kernels = kernels_for_simd_level();
  const float threshold = float_iou_threshold(iou_threshold);
  if (groups == nullptr) {
    const int32_t count = greedy_over(kernels, boxes, by_score, static_cast<int32_t>(n), threshold, workspace);
    if (count < 0) return NmsStatus::InvalidValues;
    std::copy(workspace.kept.data(), workspace.kept.data() + count, keep);
    *num_kept = count;
    return NmsStatus::Ok;
  }

  // Order by (group, decreasing score, index): a stable sort of the score order by group key.
  uint32_t* keys = at_least(workspace.group_keys, n);
  group_keys(groups, n, keys);
  for (int64_t k = 0; k < n; ++k) {
    items[k] = (static_cast<uint64_t>(keys[by_score[k]]) << 32) | static_cast<uint64_t>(by_score[k]);
  }
  sort_by_upper_bits(items, scratch, n);
  int32_t* by_group = at_least(workspace.by_group, n);
  std::vector<int64_t> group_starts;
  for (int64_t k = 0; k < n; ++k) {
    by_group[k] = static_cast<int32_t>(items[k]);
    if (k == 0 || (items[k] >> 32) != (items[k - 1] >> 32)) group_starts.push_back(k);
  }
  group_starts.push_back(n);
  const int64_t num_groups = static_cast<int64_t>(group_starts.size()) - 1;

  uint8_t* is_kept = at_least(workspace.is_kept, n);
  std::fill_n(is_kept, n, 0);
  bool bad_box = false;
#pragma omp parallel for schedule(dynamic, 8) reduction(|| : bad_box) if (num_groups > 1 && n >= 4096)
  for (int64_t g = 0; g < num_groups; ++g) {
    Workspace& local = thread_workspace();
    const int32_t m = static_cast<int32_t>(group_starts[g + 1] - group_starts[g]);
    const int32_t count = greedy_over(kernels, boxes, by_group + group_starts[g], m, threshold, local);
    bad_box = bad_box || count < 0;
    for (int32_t j = 0; j < count; ++j) is_kept[local.kept[j]] = 1;
  }
  if (bad_box) return NmsStatus::InvalidValues;
  int64_t count = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (is_kept[by_score[k]]) keep[count++] = by_score[k];
  }
  *num_kept = count;
  return NmsStatus::Ok;
}

}  // namespace vcl_fast
