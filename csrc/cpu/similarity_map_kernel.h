// Blocked, register-tiled CPU kernel of the similarity map (vcl_fast/similarity_map.h), written once over a
// vector type V and included by the scalar (similarity_map.cpp), AVX2 and AVX-512 translation units, each
// compiled with its own instruction-set flags. Everything here has internal linkage (anonymous namespace),
// so code built for one instruction set is never linked into another's callers.
//
// Scheme (like a BLIS GEMM with K = D): token vectors are converted to float32, L2-normalised and packed
// into panels of MR query frames / NR reference frames, laid out k-major (panel[(t * D + k) * STRIDE + row],
// STRIDE = MR or NR rounded up to 8; the transposition is done in 8 x 8 blocks by P::transpose8) so the
// micro-kernel reads one broadcast per query frame and NV vectors of reference frames per k. The
// micro-kernel accumulates an MR x NR tile of dot products in registers for one token combination (a, b)
// and folds it into a running max held in a tiny L1 tile; the (Q*T) x (R*T2) token product never exists.
// Work items are (pair, query block, reference block of NC frames, NC sized so its panels stay in L2), handed
// to OpenMP threads dynamically; each thread packs what its item needs into its own buffers (a query block
// stays packed while consecutive items share it), so threads never wait for each other until the end, which
// also keeps a busy machine's descheduled thread from stalling the others at barriers.
//
// V provides: width, reg, zero(), load(const float*), load_half(const uint16_t*) (width IEEE halves),
// store(float*, reg), broadcast(const float*), fma(a, b, c) = a * b + c, max, add, sub, sum(reg).
// P provides transpose8(src, src_stride, dst, dst_stride, scale, count):
//   dst[kk * dst_stride + i] = src[i * src_stride + kk] * scale[i] for i < 8, kk < count <= 8.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "include/vcl_fast/similarity_map.h"

namespace vcl_fast::cpu {

// The instruction-set variants; similarity_map.cpp holds the scalar one and chooses at run time.
void similarity_map_scalar(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                           int32_t* flags);
void similarity_map_avx2(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                         int32_t* flags);
void similarity_map_avx512(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                           int32_t* flags);

namespace {

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
inline int64_t min_of(int64_t a, int64_t b) { return a < b ? a : b; }
inline int64_t max_of(int64_t a, int64_t b) { return a > b ? a : b; }
inline int64_t cache_lines(int64_t floats) { return ceil_div(floats, 16) * 16; }  // rounded up to 64 bytes

// The reference panels of one work item should fit in this much of the (per-core) L2 cache.
constexpr int64_t kL2BlockBytes = 256 * 1024;
// Work items per thread wanted for load balance (reference blocks shrink, then queries split, to get them).
constexpr int64_t kItemsPerThread = 8;
// Below this many multiply-adds (about 0.2 ms on one core) a call runs on one thread.
constexpr int64_t kParallelMinMacs = 1 << 24;

inline void set_flag(int32_t* flag, int32_t bit) {
#pragma omp atomic
  *flag |= bit;
}

// A 64-byte aligned array (C allocation: no library templates are instantiated here).
template <typename T>
class Buffer {
 public:
  explicit Buffer(int64_t n) {
    const size_t bytes = static_cast<size_t>(ceil_div(max_of(n, 1) * static_cast<int64_t>(sizeof(T)), 64) * 64);
    data_ = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw std::bad_alloc();
  }
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  T* get() const { return data_; }

 private:
  T* data_;
};

// The last p in [begin, end) with cumulative[p] <= i, for non-decreasing cumulative[begin..end] and
// cumulative[begin] <= i < cumulative[end]: the pair that work item i belongs to.
inline int64_t owner(const int64_t* cumulative, int64_t begin, int64_t end, int64_t i) {
  while (end - begin > 1) {
    const int64_t mid = begin + (end - begin) / 2;
    if (cumulative[mid] <= i) {
      begin = mid;
    } else {
      end = mid;
    }
  }
  return begin;
}

template <class V, class P, int MR, int NV>
class SimilarityKernel {
  using reg = typename V::reg;
  static constexpr int W = V::width;
  static constexpr int NR = NV * W;                  // a multiple of 8
  static constexpr int MS = (MR + 7) / 8 * 8;        // query panel stride: MR rows padded to a multiple of 8
  static constexpr int kScratchRows = MS > NR ? MS : NR;

  // The work split: every pair's query panels in query_blocks blocks (fewer for short queries) and its
  // reference panels in blocks of block_panels; items_before[p] = work items of the pairs before p.
  struct Split {
    int64_t block_panels = 1, query_blocks = 1;

    int64_t query_block_panels(int64_t Q) const { return ceil_div(ceil_div(Q, MR), query_blocks); }
    int64_t items(const SimilarityPair& pair) const {
      if (pair.query_frames == 0 || pair.reference_frames == 0) return 0;
      return ceil_div(ceil_div(pair.query_frames, MR), query_block_panels(pair.query_frames)) *
             ceil_div(ceil_div(pair.reference_frames, NR), block_panels);
    }
    int64_t items(const SimilarityPair* pairs, int64_t n) const {
      int64_t total = 0;
      for (int64_t p = 0; p < n; ++p) total += items(pairs[p]);
      return total;
    }
  };

  // Reference blocks of at most kL2BlockBytes; with several threads, blocks shrink (down to one panel: the
  // query panels are streamed once per block, cheap next to the block's arithmetic) and then queries split in
  // 2, 4, ... blocks (each reference block is then packed once per query block) until there are
  // kItemsPerThread items per thread.
  static Split choose_split(const SimilarityPair* pairs, int64_t n, const SimilarityLayout& L, int threads,
                            int64_t max_query_panels) {
    Split split;
    split.block_panels = max_of(1, kL2BlockBytes / (4 * L.reference_tokens * L.dim * NR));
    const int64_t wanted = threads > 1 ? kItemsPerThread * threads : 1;
    while (split.items(pairs, n) < wanted) {
      if (split.block_panels > 1) {
        split.block_panels = ceil_div(split.block_panels, 2);
      } else if (split.query_blocks < max_query_panels) {
        split.query_blocks *= 2;
      } else {
        break;
      }
    }
    return split;
  }

 public:
  static void run(const SimilarityPair* pairs, int64_t n, const SimilarityLayout& L, int32_t* flags) {
    const int64_t T = L.query_tokens, T2 = L.reference_tokens, D = L.dim;
    int64_t macs = 0, max_query_panels = 0;
    for (int64_t p = 0; p < n; ++p) {
      flags[p] = 0;
      macs += pairs[p].query_frames * T * pairs[p].reference_frames * T2 * D;
      max_query_panels = max_of(max_query_panels, ceil_div(pairs[p].query_frames, MR));
    }
    if (macs == 0) return;
    const int threads = macs >= kParallelMinMacs ? omp_get_max_threads() : 1;
    const Split split = choose_split(pairs, n, L, threads, max_query_panels);
    Buffer<int64_t> items_before(n + 1);
    items_before.get()[0] = 0;
    for (int64_t p = 0; p < n; ++p) items_before.get()[p + 1] = items_before.get()[p] + split.items(pairs[p]);
    const int64_t items = items_before.get()[n];

    // Per thread: a query block, a reference block, the packing scratch and the micro-kernel's tile, each
    // starting on a 64-byte boundary.
    const int64_t query_floats = cache_lines(split.query_block_panels(max_query_panels * MR) * T * D * MS);
    const int64_t reference_floats = cache_lines(split.block_panels * T2 * D * NR);
    const int64_t row_floats = ceil_div(D, max_of(W, 8)) * max_of(W, 8);
    const int64_t scratch_floats = cache_lines(kScratchRows * (row_floats + 1));
    const int64_t thread_floats = query_floats + reference_floats + scratch_floats + cache_lines(MR * NR);
    Buffer<float> buffers(threads * thread_floats);

#pragma omp parallel num_threads(threads)
    {
      float* query_panels = buffers.get() + omp_get_thread_num() * thread_floats;
      float* reference_panels = query_panels + query_floats;
      float* scratch = reference_panels + reference_floats;
      float* tile = scratch + scratch_floats;
      const void* packed_query = nullptr;  // the query block now in query_panels
      int64_t packed_frames = -1, packed_block = -1;
#pragma omp for schedule(dynamic) nowait
      for (int64_t item = 0; item < items; ++item) {
        const int64_t p = owner(items_before.get(), 0, n, item);
        const SimilarityPair& pair = pairs[p];
        const int64_t Q = pair.query_frames, R = pair.reference_frames;
        const int64_t query_panels_per_block = split.query_block_panels(Q);
        const int64_t reference_blocks = ceil_div(ceil_div(R, NR), split.block_panels);
        const int64_t k = item - items_before.get()[p];  // items of a pair: query block major
        const int64_t qb = k / reference_blocks, rb = k % reference_blocks;
        const int64_t ip0 = qb * query_panels_per_block, jp0 = rb * split.block_panels;
        const int64_t ip1 = min_of(ip0 + query_panels_per_block, ceil_div(Q, MR));
        const int64_t jp1 = min_of(jp0 + split.block_panels, ceil_div(R, NR));

        if (pair.query != packed_query || Q != packed_frames || qb != packed_block) {
          if (!pack_panels<MR, MS>(pair.query, Q, ip0, ip1, T, L, query_panels, scratch, row_floats)) {
            set_flag(flags + p, kQueryNotFinite);
          }
          packed_query = pair.query;
          packed_frames = Q;
          packed_block = qb;
        }
        if (!pack_panels<NR, NR>(pair.reference, R, jp0, jp1, T2, L, reference_panels, scratch, row_floats)) {
          set_flag(flags + p, kReferenceNotFinite);
        }

        for (int64_t ip = ip0; ip < ip1; ++ip) {
          const float* a = query_panels + (ip - ip0) * T * D * MS;
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            micro_kernel(a, reference_panels + (jp - jp0) * T2 * D * NR, T, T2, D, tile);
            store_tile(tile, pair.out, R, ip * MR, jp * NR, min_of(MR, Q - ip * MR), min_of(NR, R - jp * NR));
          }
        }
      }
    }
  }

 private:
  // Loads count <= W features starting at element k of a token vector as float32, zero-filling the rest.
  static reg load_features(const void* vec, int64_t k, int64_t count, FeatureType type) {
    if (type == FeatureType::Float16) {
      const uint16_t* p = static_cast<const uint16_t*>(vec) + k;
      if (count == W) return V::load_half(p);
      uint16_t tail[W] = {};
      std::memcpy(tail, p, static_cast<size_t>(count) * sizeof(uint16_t));
      return V::load_half(tail);
    }
    const float* p = static_cast<const float*>(vec) + k;
    if (count == W) return V::load(p);
    float tail[W] = {};
    std::memcpy(tail, p, static_cast<size_t>(count) * sizeof(float));
    return V::load(tail);
  }

  // Packs panels [first, last) of ROWS frames each (stride STRIDE) of features shaped (frames, tokens, D) into
  // dst, one after the other. Returns false when a feature is NaN or infinite.
  template <int ROWS, int STRIDE>
  static bool pack_panels(const void* src, int64_t frames, int64_t first, int64_t last, int64_t tokens,
                          const SimilarityLayout& L, float* dst, float* scratch, int64_t row_floats) {
    bool finite = true;
    for (int64_t i = first; i < last; ++i) {
      finite &= pack_panel<STRIDE>(src, i * ROWS, min_of(ROWS, frames - i * ROWS), tokens, L,
                                   dst + (i - first) * tokens * L.dim * STRIDE, scratch, row_floats);
    }
    return finite;
  }

  // Packs frames [f0, f0 + rows) (rows <= STRIDE) of features shaped (frames, tokens, D) into a panel
  // dst[(t * D + k) * STRIDE + r] (rows past `rows` are zero), scaling each token vector to unit length
  // (zero vectors stay zero) unless L.normalized. scratch: STRIDE x (row_floats + 1) floats, row_floats a
  // multiple of W and of 8 that is >= D. Returns false when a feature is NaN or infinite.
  template <int STRIDE>
  static bool pack_panel(const void* src, int64_t f0, int64_t rows, int64_t tokens, const SimilarityLayout& L,
                         float* dst, float* scratch, int64_t row_floats) {
    const int64_t D = L.dim;
    const size_t item = L.type == FeatureType::Float16 ? 2 : 4;
    float* scale = scratch + STRIDE * row_floats;
    bool finite = true;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = 0; r < STRIDE; ++r) {  // token vectors as float32 rows, zero past D and past `rows`
        float* row = scratch + r * row_floats;
        reg squares = V::zero(), not_finite = V::zero();
        const void* vec = r < rows ? static_cast<const char*>(src) + ((f0 + r) * tokens + t) * D * item : nullptr;
        for (int64_t k = 0; k < row_floats; k += W) {
          const reg x = vec != nullptr ? load_features(vec, k, max_of(0, min_of(W, D - k)), L.type) : V::zero();
          V::store(row + k, x);
          squares = V::fma(x, x, squares);
          not_finite = V::add(not_finite, V::sub(x, x));  // x - x is NaN exactly when x is NaN or infinite
        }
        if (!(V::sum(not_finite) == 0.0f)) finite = false;
        const float norm2 = V::sum(squares);
        scale[r] = L.normalized ? 1.0f : (norm2 > 0.0f ? 1.0f / std::sqrt(norm2) : 0.0f);
      }
      for (int64_t r0 = 0; r0 < STRIDE; r0 += 8) {
        for (int64_t k0 = 0; k0 < D; k0 += 8) {
          P::transpose8(scratch + r0 * row_floats + k0, row_floats, dst + (t * D + k0) * STRIDE + r0, STRIDE,
                        scale + r0, static_cast<int>(min_of(8, D - k0)));
        }
      }
    }
    return finite;
  }

  // tile[r * NR + c] = max over a < T, b < T2 of sum_k A[(a * D + k) * MS + r] * B[(b * D + k) * NR + c].
  static void micro_kernel(const float* A, const float* B, int64_t T, int64_t T2, int64_t D, float* tile) {
    for (int64_t b = 0; b < T2; ++b) {
      for (int64_t a = 0; a < T; ++a) {
        reg c[MR][NV];
        for (int r = 0; r < MR; ++r)
          for (int v = 0; v < NV; ++v) c[r][v] = V::zero();
        const float* pa = A + a * D * MS;
        const float* pb = B + b * D * NR;
        for (int64_t k = 0; k < D; ++k, pa += MS, pb += NR) {
          reg bv[NV];
          for (int v = 0; v < NV; ++v) bv[v] = V::load(pb + v * W);
          for (int r = 0; r < MR; ++r) {
            const reg av = V::broadcast(pa + r);
            for (int v = 0; v < NV; ++v) c[r][v] = V::fma(av, bv[v], c[r][v]);
          }
        }
        const bool first = a == 0 && b == 0;
        for (int r = 0; r < MR; ++r) {
          for (int v = 0; v < NV; ++v) {
            float* t = tile + r * NR + v * W;
            V::store(t, first ? c[r][v] : V::max(V::load(t), c[r][v]));
          }
        }
      }
    }
  }

  // Copies the valid rows x cols corner of a tile to out (row stride R) at (i0, j0).
  static void store_tile(const float* tile, float* out, int64_t R, int64_t i0, int64_t j0, int64_t rows,
                         int64_t cols) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out + (i0 + r) * R + j0, tile + r * NR, static_cast<size_t>(cols) * sizeof(float));
    }
  }
};

}  // namespace
}  // namespace vcl_fast::cpu
