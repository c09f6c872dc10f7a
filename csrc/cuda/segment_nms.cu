// segment_nms_cuda: everything on the device, no host round trip inside the algorithm.
//   1. validate values and build descending score keys;
//   2. CUB stable radix sort by score, then (with groups) a stable sort of that order by group, so boxes
//      are ordered by (group, decreasing score, index);
//   3. IoU bitmask, torchvision-style: block (row block, column offset) compares 64 rows with 64 columns
//      and writes one 64-bit word per row; a row only stores the words from its own column block onward,
//      W words in all (W covers the largest group, or every box without groups);
//   4. a single-block kernel walks the rows in order and keeps a row unless a kept row removed it;
//   5. the kept indices are compacted by decreasing score with CUB DeviceSelect.
// The only host copy is the final (count, status) pair; with groups, one earlier copy of the largest
// group size sizes the mask.
#include <cuda_runtime.h>

#include <cub/device/device_radix_sort.cuh>
#include <cub/device/device_select.cuh>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "include/vcl_fast/segment_nms.h"

namespace vcl_fast {
namespace {

constexpr int kBoxesPerWord = 64;   // boxes per mask word / column block
constexpr int kThreads = 256;       // threads per block of element-wise kernels
constexpr int kReduceThreads = 256; // threads of the single-block greedy walk

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string("segment_nms_cuda: ") + what + " failed: " + cudaGetErrorString(status));
  }
}

int blocks_for(int64_t n, int threads) { return static_cast<int>((n + threads - 1) / threads); }

// Stream-ordered device memory, released on the same stream when it goes out of scope.
class DeviceBuffer {
 public:
  DeviceBuffer(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes > 0) check(cudaMallocAsync(&ptr_, bytes, stream), "cudaMallocAsync");
  }
  ~DeviceBuffer() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  template <class T>
  T* as() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

// Makes the device holding `pointer` current for the scope (restoring the previous one after).
class DeviceOf {
 public:
  explicit DeviceOf(const void* pointer) {
    cudaPointerAttributes attributes{};
    check(cudaPointerGetAttributes(&attributes, pointer), "cudaPointerGetAttributes");
    if (attributes.type != cudaMemoryTypeDevice && attributes.type != cudaMemoryTypeManaged) {
      throw std::invalid_argument("segment_nms_cuda: inputs must be CUDA device memory");
    }
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    check(cudaSetDevice(attributes.device), "cudaSetDevice");
  }
  ~DeviceOf() { cudaSetDevice(previous_); }
  DeviceOf(const DeviceOf&) = delete;
  DeviceOf& operator=(const DeviceOf&) = delete;

 private:
  int previous_ = 0;
};

// What the host reads back at the end of a call.
struct Outcome {
  int64_t num_kept;
  int32_t invalid;  // non-zero when a value is NaN/inf or a box is inverted
};

__device__ inline bool finite(float x) { return fabsf(x) <= 3.402823466e+38f; }

// Descending sort key of a score (same as the CPU's): larger scores first, -0.0 equal to 0.0.
__device__ inline uint32_t descending_key(float score) {
  uint32_t bits = score == 0.0f ? 0u : __float_as_uint(score);
  const uint32_t ascending = bits ^ (static_cast<uint32_t>(static_cast<int32_t>(bits) >> 31) | 0x80000000u);
  return ~ascending;
}

__global__ void prepare_kernel(const float* __restrict__ boxes, const float* __restrict__ scores, int n,
                               uint32_t* __restrict__ keys, int32_t* __restrict__ index, Outcome* outcome) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float* box = boxes + 4 * static_cast<int64_t>(i);
  const float q_s = box[0], r_s = box[1], q_e = box[2], r_e = box[3];
  const float score = scores[i];
  const bool ok = finite(q_s) && finite(r_s) && finite(q_e) && finite(r_e) && finite(score) && q_e >= q_s &&
                  r_e >= r_s;
  if (!ok) atomicOr(&outcome->invalid, 1);
  keys[i] = descending_key(score);
  index[i] = i;
}

// Group of each box in score order as an unsigned key that sorts like the signed id.
__global__ void group_key_kernel(const int64_t* __restrict__ groups, const int32_t* __restrict__ by_score, int n,
                                 uint64_t* __restrict__ keys) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < n) keys[k] = static_cast<uint64_t>(groups[by_score[k]]) ^ 0x8000000000000000ull;
}

// Boxes (as float4 plus area) and groups in visiting order.
__global__ void gather_kernel(const float* __restrict__ boxes, const int64_t* __restrict__ groups,
                              const int32_t* __restrict__ order, int n, float4* __restrict__ sorted_boxes,
                              float* __restrict__ sorted_areas, int64_t* __restrict__ sorted_groups) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= n) return;
  const int i = order[k];
  const float* b = boxes + 4 * static_cast<int64_t>(i);
  const float4 box = make_float4(b[0], b[1], b[2], b[3]);
  sorted_boxes[k] = box;
  // Explicitly rounded operations: never contracted to FMA and IEEE-rounded even under --use_fast_math,
  // so the IoU is bit-identical to the CPU kernels and the numpy reference (save denormal results, which
  // --use_fast_math flushes to zero).
  sorted_areas[k] = __fmul_rn(__fsub_rn(box.z, box.x), __fsub_rn(box.w, box.y));
  if (groups != nullptr) sorted_groups[k] = groups[i];
}

__device__ inline bool iou_above(float4 a, float a_area, float4 b, float b_area, float threshold) {
  const float width = fmaxf(__fsub_rn(fminf(a.z, b.z), fmaxf(a.x, b.x)), 0.0f);
  const float height = fmaxf(__fsub_rn(fminf(a.w, b.w), fmaxf(a.y, b.y)), 0.0f);
  const float inter = __fmul_rn(width, height);
  if (!(inter > 0.0f)) return false;  // IoU 0 (0/0 included)
  return __fdiv_rn(inter, __fsub_rn(__fadd_rn(a_area, b_area), inter)) > threshold;
}

// Block (row block, offset): rows [64 * row block, +64) against columns of column block row block +
// offset; word `offset` of each row gets bit j set when column j (> row) is in the row's group and
// its IoU with the row is above the threshold.
__global__ void iou_mask_kernel(const float4* __restrict__ boxes, const float* __restrict__ areas,
                                const int64_t* __restrict__ groups, int n, int words_per_row, float threshold,
                                uint64_t* __restrict__ mask) {
  const int row_block = blockIdx.x, offset = blockIdx.y;
  const int col_start = (row_block + offset) * kBoxesPerWord;
  if (col_start >= n) return;  // past the last column block: the walk never reads these words
  __shared__ float4 col_boxes[kBoxesPerWord];
  __shared__ float col_areas[kBoxesPerWord];
  __shared__ int64_t col_groups[kBoxesPerWord];
  const int cols = min(kBoxesPerWord, n - col_start);
  if (threadIdx.x < cols) {
    col_boxes[threadIdx.x] = boxes[col_start + threadIdx.x];
    col_areas[threadIdx.x] = areas[col_start + threadIdx.x];
    col_groups[threadIdx.x] = groups != nullptr ? groups[col_start + threadIdx.x] : 0;
  }
  __syncthreads();
  const int row = row_block * kBoxesPerWord + threadIdx.x;
  if (row >= n) return;
  const float4 box = boxes[row];
  const float area = areas[row];
  const int64_t group = groups != nullptr ? groups[row] : 0;
  uint64_t bits = 0;
  for (int j = offset == 0 ? threadIdx.x + 1 : 0; j < cols; ++j) {
    if (col_groups[j] == group && iou_above(box, area, col_boxes[j], col_areas[j], threshold)) bits |= 1ull << j;
  }
  mask[static_cast<int64_t>(row) * words_per_row + offset] = bits;
}

// One block walks the rows in order. `removed` (zeroed, one word per column block) collects the rows
// removed by kept rows. Within a row block every thread follows the same keep decisions from the
// block's diagonal words (in shared memory), so no barrier is needed per row; the words of later
// column blocks are OR-ed by their owner threads and published by the barrier between row blocks.
__global__ void greedy_walk_kernel(const uint64_t* __restrict__ mask, int n, int words_per_row,
                                   uint64_t* __restrict__ removed, uint8_t* __restrict__ kept) {
  __shared__ uint64_t diagonal[kBoxesPerWord];
  const int col_blocks = (n + kBoxesPerWord - 1) / kBoxesPerWord;
  for (int block = 0; block < col_blocks; ++block) {
    const int first = block * kBoxesPerWord;
    const int rows = min(kBoxesPerWord, n - first);
    if (threadIdx.x < rows) diagonal[threadIdx.x] = mask[static_cast<int64_t>(first + threadIdx.x) * words_per_row];
    __syncthreads();
    uint64_t gone = removed[block];
    const int words = min(words_per_row, col_blocks - block);
    for (int t = 0; t < rows; ++t) {
      if ((gone >> t) & 1ull) continue;
      gone |= diagonal[t];
      const uint64_t* row_mask = mask + static_cast<int64_t>(first + t) * words_per_row;
      for (int j = 1 + threadIdx.x; j < words; j += blockDim.x) removed[block + j] |= row_mask[j];
    }
    if (threadIdx.x < rows) kept[first + threadIdx.x] = ((gone >> threadIdx.x) & 1ull) ? 0 : 1;
    __syncthreads();
  }
}

// kept_by_index[order[k]] = kept_sorted[k].
__global__ void scatter_kept_kernel(const uint8_t* __restrict__ kept_sorted, const int32_t* __restrict__ order, int n,
                                    uint8_t* __restrict__ kept_by_index) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < n) kept_by_index[order[k]] = kept_sorted[k];
}

// flags[k] = kept_by_index[order[k]].
__global__ void gather_kept_kernel(const uint8_t* __restrict__ kept_by_index, const int32_t* __restrict__ order,
                                   int n, uint8_t* __restrict__ flags) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k < n) flags[k] = kept_by_index[order[k]];
}

// Stable CUB radix sort of (keys, values) pairs into the *_out arrays.
template <class Key>
void sort_pairs(const Key* keys_in, Key* keys_out, const int32_t* values_in, int32_t* values_out, int n,
                cudaStream_t stream) {
  size_t bytes = 0;
  check(cub::DeviceRadixSort::SortPairs(nullptr, bytes, keys_in, keys_out, values_in, values_out, n, 0,
                                        static_cast<int>(sizeof(Key) * 8), stream),
        "radix sort (size query)");
  DeviceBuffer temp(bytes, stream);
  check(cub::DeviceRadixSort::SortPairs(temp.as<void>(), bytes, keys_in, keys_out, values_in, values_out, n, 0,
                                        static_cast<int>(sizeof(Key) * 8), stream),
        "radix sort");
}

// Each group's first box finds where its group ends (binary search) and raises *largest to its size.
__global__ void largest_group_kernel(const int64_t* __restrict__ sorted_groups, int n, int* largest) {
  const int k = blockIdx.x * blockDim.x + threadIdx.x;
  if (k >= n || (k > 0 && sorted_groups[k - 1] == sorted_groups[k])) return;
  const int64_t group = sorted_groups[k];
  int same = k, other = n;  // sorted_groups[same] == group; other == n or sorted_groups[other] != group
  while (other - same > 1) {
    const int mid = same + (other - same) / 2;
    if (sorted_groups[mid] == group) same = mid;
    else other = mid;
  }
  atomicMax(largest, other - k);
}

// Size of the largest group of sorted group ids (one host copy).
int largest_group(const int64_t* sorted_groups, int n, cudaStream_t stream) {
  DeviceBuffer largest(sizeof(int), stream);
  check(cudaMemsetAsync(largest.as<void>(), 0, sizeof(int), stream), "cudaMemsetAsync");
  largest_group_kernel<<<blocks_for(n, kThreads), kThreads, 0, stream>>>(sorted_groups, n, largest.as<int>());
  check(cudaGetLastError(), "largest_group_kernel launch");
  int host = 0;
  check(cudaMemcpyAsync(&host, largest.as<int>(), sizeof host, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  return host;
}

}  // namespace

NmsStatus segment_nms_cuda(const float* boxes, const float* scores, const int64_t* groups, int64_t n,
                           double iou_threshold, int64_t* keep, int64_t* num_kept, std::uintptr_t stream_handle) {
  if (n < 0 || n > INT32_MAX) throw std::invalid_argument("segment_nms_cuda: n must be in [0, 2^31)");
  if (!(iou_threshold >= 0.0)) throw std::invalid_argument("segment_nms_cuda: iou_threshold must be >= 0");
  *num_kept = 0;
  if (n == 0) return NmsStatus::Ok;
  const DeviceOf device(boxes);
  const int count = static_cast<int>(n);
  cudaStream_t stream = reinterpret_cast<cudaStream_t>(stream_handle);
  const int grid = blocks_for(count, kThreads);

  DeviceBuffer outcome(sizeof(Outcome), stream);
  check(cudaMemsetAsync(outcome.as<void>(), 0, sizeof(Outcome), stream), "cudaMemsetAsync");

  // 1-2. Keys and the (group, decreasing score, index) order.
  DeviceBuffer score_keys(sizeof(uint32_t) * n, stream), sorted_score_keys(sizeof(uint32_t) * n, stream);
  DeviceBuffer identity(sizeof(int32_t) * n, stream), by_score(sizeof(int32_t) * n, stream);
  prepare_kernel<<<grid, kThreads, 0, stream>>>(boxes, scores, count, score_keys.as<uint32_t>(),
                                                 identity.as<int32_t>(), outcome.as<Outcome>());
  check(cudaGetLastError(), "prepare_kernel launch");
  sort_pairs(score_keys.as<uint32_t>(), sorted_score_keys.as<uint32_t>(), identity.as<int32_t>(),
             by_score.as<int32_t>(), count, stream);

  DeviceBuffer group_keys(groups ? sizeof(uint64_t) * n : 0, stream);
  DeviceBuffer sorted_group_keys(groups ? sizeof(uint64_t) * n : 0, stream);
  DeviceBuffer by_group_buffer(groups ? sizeof(int32_t) * n : 0, stream);
  const int32_t* order = by_score.as<int32_t>();
  if (groups != nullptr) {
    group_key_kernel<<<grid, kThreads, 0, stream>>>(groups, by_score.as<int32_t>(), count,
                                                     group_keys.as<uint64_t>());
    check(cudaGetLastError(), "group_key_kernel launch");
    sort_pairs(group_keys.as<uint64_t>(), sorted_group_keys.as<uint64_t>(), by_score.as<int32_t>(),
               by_group_buffer.as<int32_t>(), count, stream);
    order = by_group_buffer.as<int32_t>();
  }

  DeviceBuffer sorted_boxes(sizeof(float4) * n, stream), sorted_areas(sizeof(float) * n, stream);
  DeviceBuffer sorted_groups(groups ? sizeof(int64_t) * n : 0, stream);
  gather_kernel<<<grid, kThreads, 0, stream>>>(boxes, groups, order, count, sorted_boxes.as<float4>(),
                                                sorted_areas.as<float>(), sorted_groups.as<int64_t>());
  check(cudaGetLastError(), "gather_kernel launch");

  // 3. IoU mask, W words per row.
  const int col_blocks = (count + kBoxesPerWord - 1) / kBoxesPerWord;
  int64_t span = count;  // boxes a row can interact with
  if (groups != nullptr) span = largest_group(sorted_groups.as<int64_t>(), count, stream);
  const int words_per_row = static_cast<int>(std::min<int64_t>(col_blocks, (span + kBoxesPerWord - 2) / kBoxesPerWord + 1));
  if (words_per_row > 65535) throw std::invalid_argument("segment_nms_cuda: a group of more than 4,194,240 boxes is too large");
  DeviceBuffer mask(sizeof(uint64_t) * static_cast<size_t>(n) * words_per_row, stream);
  iou_mask_kernel<<<dim3(col_blocks, words_per_row), kBoxesPerWord, 0, stream>>>(
      sorted_boxes.as<float4>(), sorted_areas.as<float>(), groups ? sorted_groups.as<int64_t>() : nullptr, count,
      words_per_row, float_iou_threshold(iou_threshold), mask.as<uint64_t>());
  check(cudaGetLastError(), "iou_mask_kernel launch");

  // 4. Greedy walk.
  DeviceBuffer removed(sizeof(uint64_t) * col_blocks, stream), kept_sorted(n, stream);
  check(cudaMemsetAsync(removed.as<void>(), 0, sizeof(uint64_t) * col_blocks, stream), "cudaMemsetAsync");
  greedy_walk_kernel<<<1, kReduceThreads, 0, stream>>>(mask.as<uint64_t>(), count, words_per_row,
                                                        removed.as<uint64_t>(), kept_sorted.as<uint8_t>());
  check(cudaGetLastError(), "greedy_walk_kernel launch");

  // 5. Kept indices by decreasing score.
  const uint8_t* flags = kept_sorted.as<uint8_t>();  // already in score order without groups
  DeviceBuffer kept_by_index(groups ? n : 0, stream), score_flags(groups ? n : 0, stream);
  if (groups != nullptr) {
    scatter_kept_kernel<<<grid, kThreads, 0, stream>>>(kept_sorted.as<uint8_t>(), order, count,
                                                        kept_by_index.as<uint8_t>());
    gather_kept_kernel<<<grid, kThreads, 0, stream>>>(kept_by_index.as<uint8_t>(), by_score.as<int32_t>(), count,
                                                       score_flags.as<uint8_t>());
    check(cudaGetLastError(), "kept flag kernels launch");
    flags = score_flags.as<uint8_t>();
  }
  Outcome* device_outcome = outcome.as<Outcome>();
  size_t bytes = 0;
  check(cub::DeviceSelect::Flagged(nullptr, bytes, by_score.as<int32_t>(), flags, keep, &device_outcome->num_kept,
                                   count, stream),
        "select (size query)");
  {
    DeviceBuffer temp(bytes, stream);
    check(cub::DeviceSelect::Flagged(temp.as<void>(), bytes, by_score.as<int32_t>(), flags, keep,
                                     &device_outcome->num_kept, count, stream),
          "select");
  }

  Outcome host{};
  check(cudaMemcpyAsync(&host, device_outcome, sizeof host, cudaMemcpyDeviceToHost, stream), "cudaMemcpyAsync");
  check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  if (host.invalid != 0) return NmsStatus::InvalidValues;
  *num_kept = host.num_kept;
  return NmsStatus::Ok;
}

}  // namespace vcl_fast
