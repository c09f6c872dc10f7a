// segment_nms_cpu: input validation, stable radix sort by (group, decreasing score), greedy suppression
// per group (in parallel across groups) and the output in decreasing-score order. The greedy inner loop
// has scalar / AVX2 / AVX-512 variants chosen at run time (cpu_features.h).
#include "include/vcl_fast/segment_nms.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "cpu/cpu_features.h"
#include "cpu/segment_nms_greedy.h"

namespace vcl_fast {
namespace cpu {

GreedyProgress greedy_nms_scalar(SortedBoxes b, GreedyProgress from, float threshold, int32_t* kept,
                                 int64_t max_tests) {
  int32_t num_kept = from.num_kept;
  int32_t end = from.end;  // live boxes are [head, end)
  int32_t head = from.head;
  for (int64_t tests = 0; head < end && tests <= max_tests; ++head) {
    kept[num_kept++] = b.id[head];
    tests += end - head - 1;
    int32_t w = head + 1;
    for (int32_t r = head + 1; r < end; ++r) {
      if (iou_above(b, head, r, threshold)) continue;
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
  return {head, end, num_kept};
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

using cpu::GreedyProgress;
using cpu::SortedBoxes;

// The gather and greedy kernels of one SIMD level.
struct Kernels {
  bool (*gather)(const float*, const int32_t*, int32_t, SortedBoxes);
  GreedyProgress (*greedy)(SortedBoxes, GreedyProgress, float, int32_t*, int64_t);
};

Kernels kernels_for_simd_level() {
  switch (cpu::simd_level()) {
    case cpu::SimdLevel::AVX512: return {cpu::gather_boxes_avx2, cpu::greedy_nms_avx512};
    case cpu::SimdLevel::AVX2: return {cpu::gather_boxes_avx2, cpu::greedy_nms_avx2};
    default: return {cpu::gather_boxes_scalar, cpu::greedy_nms_scalar};
  }
}

// Sort key of a finite float32: larger values give larger keys, and -0.0 the same key as 0.0.
uint32_t ascending_key(float x) {
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof bits);
  bits = x == 0.0f ? 0u : bits;
  return bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u);
}

// Sort key of a float32 score: larger scores give smaller keys.
uint32_t descending_key(float score) { return ~ascending_key(score); }

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
  std::vector<uint64_t> window_items, window_scratch;  // greedy_nms_windowed
  std::vector<float> window_coords;
  std::vector<int32_t> window_boxes;
  std::vector<uint8_t> alive;
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

// Groups of at least this many boxes may switch from the plain greedy loop to greedy_nms_windowed, after
// kTestsPerBoxBeforeWindows tests per box, when at least half the boxes decided by then were kept. The
// plain loop is cheap when most boxes get suppressed early (dense detector output) but makes about m^2 / 2
// tests when most boxes are kept (sparse segments).
constexpr int32_t kMinBoxesForWindows = 1024;
constexpr int64_t kTestsPerBoxBeforeWindows = 16;

// The number of leading entries of the non-decreasing a[0..n) that are < x (<= x when or_equal); a binary
// search without data-dependent branches (a conditional move per step).
int32_t count_below(const float* a, int32_t n, float x, bool or_equal) {
  if (n == 0) return 0;
  const auto below = [&](float e) { return or_equal ? e <= x : e < x; };
  const float* base = a;
  for (int32_t len = n; len > 1; len -= len / 2) base = below(base[len / 2]) ? base + len / 2 : base;
  return static_cast<int32_t>(base - a) + (below(*base) ? 1 : 0);
}

// Finishes a greedy suppression from `from` (greedy_nms_<isa>), testing each kept box only against the
// live boxes whose q range can intersect its own. The live boxes are sorted by q_s; with reach[k] the
// largest q_e among the first k + 1 of them, a kept box [q_s, q_e] is tested against the sorted boxes
// [first k with reach[k] > q_s, first k with start >= q_e): every box before the window ends at or before
// q_s, every box after it starts at or after q_e, so their intersections have width <= 0 and IoU 0; in the
// window, boxes whose q or r range does not overlap (strictly) are skipped for the same reason. The kept
// boxes are therefore exactly those of the plain greedy loop.
GreedyProgress greedy_nms_windowed(SortedBoxes b, GreedyProgress from, float threshold, int32_t* kept,
                                   Workspace& workspace) {
  const int32_t head = from.head, n = from.end - from.head;
  uint64_t* items = at_least(workspace.window_items, n);
  uint64_t* scratch = at_least(workspace.window_scratch, n);
  for (int32_t k = 0; k < n; ++k) {
    items[k] = (static_cast<uint64_t>(ascending_key(b.q_s[head + k])) << 32) | static_cast<uint64_t>(k);
  }
  sort_by_upper_bits(items, scratch, n);
  // The live boxes in q_s order: coordinates, reach, and their index into b.
  const int64_t stride = static_cast<int64_t>(n) + 8;  // the scan reads up to 8 entries past n
  float* c = at_least(workspace.window_coords, 5 * stride);
  float *q_s = c, *q_e = c + stride, *r_s = c + 2 * stride, *r_e = c + 3 * stride, *reach = c + 4 * stride;
  int32_t* box = at_least(workspace.window_boxes, n);
  uint8_t* alive = at_least(workspace.alive, n);  // by index into b - head
  float running = -FLT_MAX;
  for (int32_t k = 0; k < n; ++k) {
    const int32_t j = head + static_cast<int32_t>(items[k]);
    box[k] = j;
    q_s[k] = b.q_s[j];
    q_e[k] = b.q_e[j];
    r_s[k] = b.r_s[j];
    r_e[k] = b.r_e[j];
    running = std::max(running, q_e[k]);
    reach[k] = running;
    alive[k] = 1;
  }
  int32_t num_kept = from.num_kept;
  for (int32_t i = head; i < from.end; ++i) {
    if (!alive[i - head]) continue;
    kept[num_kept++] = b.id[i];
    const float i_qs = b.q_s[i], i_qe = b.q_e[i], i_rs = b.r_s[i], i_re = b.r_e[i];
    const int32_t first = count_below(reach, n, i_qs, true), last = count_below(q_s, n, i_qe, false);
    for (int32_t k0 = first; k0 < last; k0 += 8) {
      // Which of the next 8 boxes overlap box i along both axes, without a branch per box (the arrays
      // have 8 readable entries past n; lanes past `last` are masked off).
      uint32_t overlap = 0;
      for (int32_t l = 0; l < 8; ++l) {
        const int32_t k = k0 + l;
        overlap |= static_cast<uint32_t>((q_e[k] > i_qs) & (r_s[k] < i_re) & (r_e[k] > i_rs)) << l;
      }
      if (last - k0 < 8) overlap &= (1u << (last - k0)) - 1u;
      for (; overlap != 0; overlap &= overlap - 1) {
        const int32_t j = box[k0 + __builtin_ctz(overlap)];
        if (j > i && alive[j - head] && iou_above(b, i, j, threshold)) alive[j - head] = 0;
      }
    }
  }
  return {from.end, from.end, num_kept};
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
  int32_t* kept = at_least(workspace.kept, m);
  const int64_t max_tests = m >= kMinBoxesForWindows ? kTestsPerBoxBeforeWindows * m : INT64_MAX;
  GreedyProgress progress = kernels.greedy(sorted, {0, m, 0}, threshold, kept, max_tests);
  if (progress.head < progress.end) {
    const int32_t decided = m - (progress.end - progress.head);
    progress = 2 * progress.num_kept >= decided
                   ? greedy_nms_windowed(sorted, progress, threshold, kept, workspace)
                   : kernels.greedy(sorted, progress, threshold, kept, INT64_MAX);
  }
  return progress.num_kept;
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
