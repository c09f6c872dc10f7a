// Blocked, register-tiled CPU kernel of the similarity map (vcl_fast/similarity_map.h), written once over
// vector types and included by the scalar (similarity_map.cpp), AVX2 and AVX-512 translation units, each
// compiled with its own instruction-set flags. Everything here has internal linkage (anonymous namespace),
// so code built for one instruction set is never linked into another's callers.
//
// Scheme (like a BLIS GEMM with K = D): token vectors are normalised and packed into panels of MR query
// frames / NR reference frames, laid out k-major (panel[(t * K + k) * STRIDE + row], STRIDE = MR or NR rounded
// up to 8; the transposition is done in 8 x 8 blocks by P::transpose8) so the micro-kernel reads one
// broadcast per query frame and NV vectors of reference frames per k. The micro-kernel accumulates an
// MR x NR tile of dot products in registers for one token combination (a, b) and folds it into a running
// max held in a tiny L1 tile; the (Q*T) x (R*T2) token product never exists. Work items are (pair, query
// block, reference block of NC frames, NC sized so its panels stay in L2), handed to OpenMP threads
// dynamically; each thread packs what its item needs into its own buffers (a query block stays packed while
// consecutive items share it), so threads never wait for each other until the end, which also keeps a busy
// machine's descheduled thread from stalling the others at barriers.
//
// Two arithmetics share that driver (SimilarityKernel<Panels>):
// - Float32Panels: float32 panel entries (K = D), L2-normalised in float32 unless L.normalized, FMA.
// - Int16Panels (Precision::Int16): every token vector is normalised in float64 and quantised to int16
//   (round(32767 * x / |x|), see quantize_int16), two consecutive features per 32-bit panel entry (in memory
//   order; the pairwise multiply-add sums both halves, so which half is which does not matter)
//   (K = ceil(D / 2)), multiplied with a pairwise int16 multiply-add (VPMADDWD) into exact int32 sums;
//   the map is float(max of the int32 dot products) * (1 / 32767^2). |dot| <= (32767 + sqrt(D) / 2)^2 <
//   2^31 for D < 7e8 (Cauchy-Schwarz on the quantised vectors; also for every partial sum), so nothing
//   overflows, and the result equals vcl_fast.ops.similarity_map_int16_reference bit for bit.
//
// V (vector of `value`, float or int32_t) provides: value, width, reg, zero(), load(const value*),
// store(value*, reg), broadcast(const value*), fma(a, b, c) = a * b + c (int16 pairs: c + the pairwise
// products of the int16 halves of a and b summed per 32-bit lane), max. Float V also: load_half(const
// uint16_t*) (width IEEE halves), add, sub, sum(reg).
// P provides transpose8(src, src_stride, dst, dst_stride, scale, count):
//   dst[kk * dst_stride + i] = src[i * src_stride + kk] * scale[i] for i < 8, kk < count <= 8 (floats), and
// transpose8(src, src_stride, dst, dst_stride, count), the same without the scale for int32_t entries.
#pragma once

#include <omp.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "include/vcl_fast/similarity_map.h"

namespace vcl_fast::cpu {

// The instruction-set variants; similarity_map.cpp holds the scalar one and chooses at run time. The int16
// arithmetic (layout.precision == Precision::Int16) has a scalar and an AVX2 variant (AVX-512 CPUs run the
// AVX2 one).
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
inline int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
inline int64_t cache_lines(int64_t words) { return round_up(words, 16); }  // 4-byte words, rounded up to 64 bytes

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

// Loads count <= V::width features starting at element k of a token vector as float32, zero-filling the rest.
template <class V>
typename V::reg load_features(const void* vec, int64_t k, int64_t count, FeatureType type) {
  constexpr int W = V::width;
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

// tile[r * NR + c] = max over a < T, b < T2 of sum_k A[(a * K + k) * MS + r] * B[(b * K + k) * NR + c], with V's
// multiply-add (float FMA or int16-pair multiply-add), NR = NV * V::width.
template <class V, int MR, int NV, int MS>
void max_tile(const typename V::value* A, const typename V::value* B, int64_t T, int64_t T2, int64_t K,
              typename V::value* tile) {
  using reg = typename V::reg;
  constexpr int W = V::width, NR = NV * W;
  for (int64_t b = 0; b < T2; ++b) {
    for (int64_t a = 0; a < T; ++a) {
      reg c[MR][NV];
      for (int r = 0; r < MR; ++r)
        for (int v = 0; v < NV; ++v) c[r][v] = V::zero();
      const typename V::value* pa = A + a * K * MS;
      const typename V::value* pb = B + b * K * NR;
      for (int64_t k = 0; k < K; ++k, pa += MS, pb += NR) {
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
          typename V::value* t = tile + r * NR + v * W;
          V::store(t, first ? c[r][v] : V::max(V::load(t), c[r][v]));
        }
      }
    }
  }
}

// The float32 arithmetic: float32 panels, L2-normalised in float32 while packing (unless L.normalized).
template <class V, class P, int MR_, int NV>
struct Float32Panels {
  using value = float;
  static constexpr int MR = MR_, W = V::width, NR = NV * W;  // NR: a multiple of 8
  static constexpr int MS = (MR + 7) / 8 * 8;                // query panel stride: MR rows padded to 8

  static int64_t steps(int64_t D) { return D; }
  static int64_t row_floats(int64_t D) { return round_up(D, W > 8 ? W : 8); }
  static int64_t scratch_words(int64_t D) { return (MS > NR ? MS : NR) * (row_floats(D) + 1); }

  // Packs frames [f0, f0 + rows) (rows <= STRIDE) of features shaped (frames, tokens, D) into a panel
  // dst[(t * D + k) * STRIDE + r] (rows past `rows` are zero), scaling each token vector to unit length
  // (zero vectors stay zero) unless L.normalized. scratch: scratch_words(D) floats. Returns false when a
  // feature is NaN or infinite.
  template <int STRIDE>
  static bool pack_panel(const void* src, int64_t f0, int64_t rows, int64_t tokens, const SimilarityLayout& L,
                         float* dst, float* scratch) {
    using reg = typename V::reg;
    const int64_t D = L.dim, row_stride = row_floats(D);
    const size_t item = L.type == FeatureType::Float16 ? 2 : 4;
    float* scale = scratch + STRIDE * row_stride;
    bool finite = true;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = 0; r < STRIDE; ++r) {  // token vectors as float32 rows, zero past D and past `rows`
        float* row = scratch + r * row_stride;
        reg squares = V::zero(), not_finite = V::zero();
        const void* vec = r < rows ? static_cast<const char*>(src) + ((f0 + r) * tokens + t) * D * item : nullptr;
        for (int64_t k = 0; k < row_stride; k += W) {
          const reg x = vec != nullptr ? load_features<V>(vec, k, max_of(0, min_of(W, D - k)), L.type) : V::zero();
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
          P::transpose8(scratch + r0 * row_stride + k0, row_stride, dst + (t * D + k0) * STRIDE + r0, STRIDE,
                        scale + r0, static_cast<int>(min_of(8, D - k0)));
        }
      }
    }
    return finite;
  }

  static void micro_kernel(const float* A, const float* B, int64_t T, int64_t T2, int64_t D, float* tile) {
    max_tile<V, MR, NV, MS>(A, B, T, T2, D, tile);
  }

  // Copies the valid rows x cols corner of a tile to out (row stride R) at (i0, j0).
  static void store_tile(const float* tile, float* out, int64_t R, int64_t i0, int64_t j0, int64_t rows,
                         int64_t cols) {
    for (int64_t r = 0; r < rows; ++r) {
      std::memcpy(out + (i0 + r) * R + j0, tile + r * NR, static_cast<size_t>(cols) * sizeof(float));
    }
  }
};

// The quantised int16 token vector of x[0..D) (float32): q[k] = round_half_even(x[k] * 32767 / |x|), with
// |x|^2 summed in float64 in 8 interleaved lanes (x[k]^2 into lane k % 8, in k order; each square is exact in
// float64, so a fused multiply-add gives the same sums) combined as ((l0 + l4) + (l2 + l6)) + ((l1 + l5) +
// (l3 + l7)). A zero vector gives zeros. Every step is one IEEE float64 operation, so the numpy reference
// (vcl_fast.ops.similarity) reproduces q exactly; both loops vectorise. Returns false when x holds NaN or
// infinity.
inline bool quantize_int16(const float* x, int64_t D, int16_t* q) {
  double lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  const int64_t D8 = D / 8 * 8;
  for (int64_t k = 0; k < D8; k += 8) {
    for (int l = 0; l < 8; ++l) lane[l] += static_cast<double>(x[k + l]) * static_cast<double>(x[k + l]);
  }
  for (int64_t k = D8; k < D; ++k) lane[k - D8] += static_cast<double>(x[k]) * static_cast<double>(x[k]);
  const double norm2 = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
  if (!std::isfinite(norm2)) return false;
  const double scale = norm2 > 0.0 ? 32767.0 / std::sqrt(norm2) : 0.0;  // |x[k] * scale| <= 32767 (+ rounding)
  for (int64_t k = 0; k < D; ++k) q[k] = static_cast<int16_t>(std::nearbyint(static_cast<double>(x[k]) * scale));
  return true;
}

// The int16 arithmetic: panels of int32 entries, each two consecutive quantised features (quantize_int16;
// always normalised, whatever L.normalized says), I a vector of int32_t whose fma is the int16-pair
// multiply-add; V (float) and P load and transpose.
template <class V, class I, class P, int MR_, int NV>
struct Int16Panels {
  using value = int32_t;
  static constexpr int MR = MR_, W = I::width, NR = NV * W;  // NR: a multiple of 8
  static constexpr int MS = (MR + 7) / 8 * 8;
  static constexpr float kUnscale = static_cast<float>(1.0 / (32767.0 * 32767.0));

  static int64_t steps(int64_t D) { return ceil_div(D, 2); }
  static int64_t row_words(int64_t D) { return round_up(steps(D), 8); }
  static int64_t row_floats(int64_t D) { return round_up(D, V::width); }
  // STRIDE quantised rows, a token vector as float32, its int16 values
  static int64_t scratch_words(int64_t D) { return ((MS > NR ? MS : NR) + 1) * row_words(D) + row_floats(D); }

  // Packs frames [f0, f0 + rows) (rows <= STRIDE) of features shaped (frames, tokens, D) into a panel
  // dst[(t * K + k) * STRIDE + r] (K = steps(D); rows past `rows` are zero) of quantised feature pairs.
  // scratch: scratch_words(D) words. Returns false when a feature is NaN or infinite.
  template <int STRIDE>
  static bool pack_panel(const void* src, int64_t f0, int64_t rows, int64_t tokens, const SimilarityLayout& L,
                         int32_t* dst, int32_t* scratch) {
    const int64_t D = L.dim, K = steps(D), row_stride = row_words(D);
    const size_t item = L.type == FeatureType::Float16 ? 2 : 4;
    int16_t* q = reinterpret_cast<int16_t*>(scratch + STRIDE * row_stride);  // one quantised token vector
    float* x = reinterpret_cast<float*>(scratch + (STRIDE + 1) * row_stride);  // the same as float32
    bool finite = true;
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = 0; r < STRIDE; ++r) {  // rows of feature pairs, zero past D and past `rows`
        int32_t* row = scratch + r * row_stride;
        std::memset(row, 0, static_cast<size_t>(row_stride) * sizeof(int32_t));
        if (r >= rows) continue;
        const void* vec = static_cast<const char*>(src) + ((f0 + r) * tokens + t) * D * item;
        if (L.type == FeatureType::Float16) {
          for (int64_t k = 0; k < D; k += V::width) {
            V::store(x + k, load_features<V>(vec, k, min_of(V::width, D - k), L.type));
          }
        }
        finite &= quantize_int16(L.type == FeatureType::Float16 ? x : static_cast<const float*>(vec), D, q);
        std::memcpy(row, q, static_cast<size_t>(D) * sizeof(int16_t));  // q[2j], q[2j + 1] share word j
      }
      for (int64_t r0 = 0; r0 < STRIDE; r0 += 8) {
        for (int64_t k0 = 0; k0 < K; k0 += 8) {
          P::transpose8(scratch + r0 * row_stride + k0, row_stride, dst + (t * K + k0) * STRIDE + r0, STRIDE,
                        static_cast<int>(min_of(8, K - k0)));
        }
      }
    }
    return finite;
  }

  static void micro_kernel(const int32_t* A, const int32_t* B, int64_t T, int64_t T2, int64_t K, int32_t* tile) {
    max_tile<I, MR, NV, MS>(A, B, T, T2, K, tile);
  }

  // Writes the valid rows x cols corner of a tile of int32 dot products to out (row stride R) at (i0, j0) as
  // float(dot) * kUnscale (both roundings IEEE, like the reference).
  static void store_tile(const int32_t* tile, float* out, int64_t R, int64_t i0, int64_t j0, int64_t rows,
                         int64_t cols) {
    for (int64_t r = 0; r < rows; ++r) {
      float* o = out + (i0 + r) * R + j0;
      for (int64_t c = 0; c < cols; ++c) o[c] = static_cast<float>(tile[r * NR + c]) * kUnscale;
    }
  }
};

// The driver, over one of the arithmetics above (Panels).
template <class Panels>
class SimilarityKernel {
  using value = typename Panels::value;
  static constexpr int MR = Panels::MR, NR = Panels::NR, MS = Panels::MS;

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
    split.block_panels = max_of(1, kL2BlockBytes / (4 * L.reference_tokens * Panels::steps(L.dim) * NR));
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
    const int64_t T = L.query_tokens, T2 = L.reference_tokens, K = Panels::steps(L.dim);
    int64_t macs = 0, max_query_panels = 0;
    for (int64_t p = 0; p < n; ++p) {
      flags[p] = 0;
      macs += pairs[p].query_frames * T * pairs[p].reference_frames * T2 * L.dim;
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
    const int64_t query_words = cache_lines(split.query_block_panels(max_query_panels * MR) * T * K * MS);
    const int64_t reference_words = cache_lines(split.block_panels * T2 * K * NR);
    const int64_t scratch_words = cache_lines(Panels::scratch_words(L.dim));
    const int64_t thread_words = query_words + reference_words + scratch_words + cache_lines(MR * NR);
    Buffer<value> buffers(threads * thread_words);

#pragma omp parallel num_threads(threads)
    {
      value* query_panels = buffers.get() + omp_get_thread_num() * thread_words;
      value* reference_panels = query_panels + query_words;
      value* scratch = reference_panels + reference_words;
      value* tile = scratch + scratch_words;
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
          if (!pack_panels<MR, MS>(pair.query, Q, ip0, ip1, T, L, query_panels, scratch)) {
            set_flag(flags + p, kQueryNotFinite);
          }
          packed_query = pair.query;
          packed_frames = Q;
          packed_block = qb;
        }
        if (!pack_panels<NR, NR>(pair.reference, R, jp0, jp1, T2, L, reference_panels, scratch)) {
          set_flag(flags + p, kReferenceNotFinite);
        }

        for (int64_t ip = ip0; ip < ip1; ++ip) {
          const value* a = query_panels + (ip - ip0) * T * K * MS;
          for (int64_t jp = jp0; jp < jp1; ++jp) {
            Panels::micro_kernel(a, reference_panels + (jp - jp0) * T2 * K * NR, T, T2, K, tile);
            Panels::store_tile(tile, pair.out, R, ip * MR, jp * NR, min_of(MR, Q - ip * MR),
                               min_of(NR, R - jp * NR));
          }
        }
      }
    }
  }

 private:
  // Packs panels [first, last) of ROWS frames each (stride STRIDE) of features shaped (frames, tokens, D) into
  // dst, one after the other. Returns false when a feature is NaN or infinite.
  template <int ROWS, int STRIDE>
  static bool pack_panels(const void* src, int64_t frames, int64_t first, int64_t last, int64_t tokens,
                          const SimilarityLayout& L, value* dst, value* scratch) {
    bool finite = true;
    for (int64_t i = first; i < last; ++i) {
      finite &= Panels::template pack_panel<STRIDE>(src, i * ROWS, min_of(ROWS, frames - i * ROWS), tokens, L,
                                                    dst + (i - first) * tokens * Panels::steps(L.dim) * STRIDE,
                                                    scratch);
    }
    return finite;
  }
};

}  // namespace
}  // namespace vcl_fast::cpu
