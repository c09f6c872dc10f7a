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
// Work is split over OpenMP threads in (MC x NC)-frame tiles, NC sized so its reference panels stay in L2.
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

// Reference panels of one tile should fit in this much of the (per-core) L2 cache.
constexpr int64_t kL2TileBytes = 256 * 1024;
// Query panels per tile (MC = kQueryPanelsPerTile * MR frames).
constexpr int64_t kQueryPanelsPerTile = 16;
// Pairs are processed in groups whose packed panels fit in this many bytes (one pair may exceed it alone):
// each group costs two thread barriers (panels packed; tiles done), whatever its number of pairs.
constexpr int64_t kGroupBytes = 16 << 20;
// Below this many multiply-adds (about 0.2 ms on one core) a call runs on one thread: waking a second
// thread costs more than it saves, and on a busy machine a descheduled thread stalls every barrier.
constexpr int64_t kParallelMinMacs = 1 << 24;

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

  // Where each pair's work lives. Per pair p: its packed query / reference panels at query_at[p] /
  // reference_at[p] (floats into the group's buffers), owns_query[p] (it packs its query; otherwise it shares
  // the previous pair's), and the cumulative counts of packing jobs (panels) and tiles over pairs.
  struct Plan {
    explicit Plan(int64_t n) : storage(8 * n + 3) {}
    Buffer<int64_t> storage;
    int64_t* query_at() const { return storage.get(); }
    int64_t* reference_at(int64_t n) const { return storage.get() + n; }
    int64_t* owns_query(int64_t n) const { return storage.get() + 2 * n; }
    int64_t* panels_before(int64_t n) const { return storage.get() + 3 * n; }        // n + 1
    int64_t* tiles_before(int64_t n) const { return storage.get() + 4 * n + 1; }     // n + 1
    int64_t* group_begin(int64_t n) const { return storage.get() + 5 * n + 2; }      // groups + 1
    int64_t* group_tile_shape(int64_t n) const { return storage.get() + 6 * n + 3; } // 2 per group
  };

 public:
  static void run(const SimilarityPair* pairs, int64_t n, const SimilarityLayout& L, int32_t* flags) {
    const int64_t T = L.query_tokens, T2 = L.reference_tokens, D = L.dim;
    int64_t macs = 0;
    for (int64_t p = 0; p < n; ++p) {
      flags[p] = 0;
      macs += pairs[p].query_frames * T * pairs[p].reference_frames * T2 * D;
    }
    if (macs == 0) return;
    const int threads = macs >= kParallelMinMacs ? omp_get_max_threads() : 1;

    Plan plan(n);
    int64_t groups = 0, query_floats = 0, reference_floats = 0;
    make_plan(pairs, n, L, threads, plan, &groups, &query_floats, &reference_floats);
    const int64_t* query_at = plan.query_at();
    const int64_t* reference_at = plan.reference_at(n);
    const int64_t* owns_query = plan.owns_query(n);
    const int64_t* panels_before = plan.panels_before(n);
    const int64_t* tiles_before = plan.tiles_before(n);
    const int64_t* group_begin = plan.group_begin(n);
    const int64_t* tile_shape = plan.group_tile_shape(n);

    const int64_t row_floats = ceil_div(D, max_of(W, 8)) * max_of(W, 8);
    const int64_t scratch_floats = kScratchRows * (row_floats + 1) + MR * NR;
    Buffer<float> query_panels(query_floats), reference_panels(reference_floats);
    Buffer<float> scratch(threads * scratch_floats);

#pragma omp parallel num_threads(threads)
    {
      float* rows = scratch.get() + omp_get_thread_num() * scratch_floats;
      float* tile = rows + kScratchRows * (row_floats + 1);
      for (int64_t g = 0; g < groups; ++g) {
        const int64_t p0 = group_begin[g], p1 = group_begin[g + 1];
#pragma omp for schedule(static)
        for (int64_t i = panels_before[p0]; i < panels_before[p1]; ++i) {
          const int64_t p = owner(panels_before, p0, p1, i);
          const SimilarityPair& pair = pairs[p];
          const int64_t query_panel_count = owns_query[p] ? ceil_div(pair.query_frames, MR) : 0;
          const int64_t k = i - panels_before[p];
          bool finite;
          int32_t bit;
          if (k < query_panel_count) {
            finite = pack_panel<MS>(pair.query, k * MR, min_of(MR, pair.query_frames - k * MR), T, L,
                                    query_panels.get() + query_at[p] + k * T * D * MS, rows, row_floats);
            bit = kQueryNotFinite;
          } else {
            const int64_t j = k - query_panel_count;
            finite = pack_panel<NR>(pair.reference, j * NR, min_of(NR, pair.reference_frames - j * NR), T2, L,
                                    reference_panels.get() + reference_at[p] + j * T2 * D * NR, rows, row_floats);
            bit = kReferenceNotFinite;
          }
          if (!finite) {
#pragma omp atomic
            flags[p] |= bit;
          }
        }  // implicit barrier: the group's panels are ready

        const int64_t mc_panels = tile_shape[2 * g], nc_panels = tile_shape[2 * g + 1];
#pragma omp for schedule(dynamic)
        for (int64_t t = tiles_before[p0]; t < tiles_before[p1]; ++t) {
          const int64_t p = owner(tiles_before, p0, p1, t);
          const SimilarityPair& pair = pairs[p];
          const int64_t Q = pair.query_frames, R = pair.reference_frames;
          const int64_t tiles_n = ceil_div(ceil_div(R, NR), nc_panels), k = t - tiles_before[p];
          const int64_t ip0 = (k / tiles_n) * mc_panels, jp0 = (k % tiles_n) * nc_panels;
          const int64_t ip1 = min_of(ip0 + mc_panels, ceil_div(Q, MR));
          const int64_t jp1 = min_of(jp0 + nc_panels, ceil_div(R, NR));
          for (int64_t ip = ip0; ip < ip1; ++ip) {
            const float* a = query_panels.get() + query_at[p] + ip * T * D * MS;
            for (int64_t jp = jp0; jp < jp1; ++jp) {
              micro_kernel(a, reference_panels.get() + reference_at[p] + jp * T2 * D * NR, T, T2, D, tile);
              store_tile(tile, pair.out, R, ip * MR, jp * NR, min_of(MR, Q - ip * MR), min_of(NR, R - jp * NR));
            }
          }
        }  // implicit barrier: the next group may overwrite the panels
      }
    }
  }

 private:
  // Fills the plan: consecutive non-empty pairs form groups whose packed panels fit kGroupBytes; within a
  // group a pair shares the previous pair's packed query when it is the same array. Each group gets one tile
  // shape in panels: NC reference panels fill at most kL2TileBytes, MC = kQueryPanelsPerTile query panels,
  // both halved (NC first) until the group has at least 4 tiles per thread, so small maps use every thread.
  static void make_plan(const SimilarityPair* pairs, int64_t n, const SimilarityLayout& L, int threads,
                        const Plan& plan, int64_t* groups, int64_t* query_floats, int64_t* reference_floats) {
    const int64_t T = L.query_tokens, T2 = L.reference_tokens, D = L.dim;
    int64_t* query_at = plan.query_at();
    int64_t* reference_at = plan.reference_at(n);
    int64_t* owns_query = plan.owns_query(n);
    int64_t* panels_before = plan.panels_before(n);
    int64_t* group_begin = plan.group_begin(n);
    int64_t query_used = 0, reference_used = 0, previous = -1;  // previous: last non-empty pair of the group
    *groups = 0;
    panels_before[0] = 0;
    for (int64_t p = 0; p < n; ++p) {
      const int64_t Q = pairs[p].query_frames, R = pairs[p].reference_frames;
      query_at[p] = reference_at[p] = owns_query[p] = 0;
      if (Q == 0 || R == 0) {
        panels_before[p + 1] = panels_before[p];
        continue;
      }
      const int64_t query_size = ceil_div(Q, MR) * T * D * MS, reference_size = ceil_div(R, NR) * T2 * D * NR;
      bool shares = previous >= 0 && pairs[previous].query == pairs[p].query && pairs[previous].query_frames == Q;
      const int64_t added = (shares ? 0 : query_size) + reference_size;
      if (previous >= 0 && (query_used + reference_used + added) * 4 > kGroupBytes) {
        previous = -1;
        shares = false;
      }
      if (previous < 0) {
        group_begin[*groups] = *groups == 0 ? 0 : p;  // groups cover every pair, empty ones included
        ++*groups;
        query_used = reference_used = 0;
      }
      owns_query[p] = shares ? 0 : 1;
      query_at[p] = shares ? query_at[previous] : query_used;
      query_used += shares ? 0 : query_size;
      reference_at[p] = reference_used;
      reference_used += reference_size;
      *query_floats = max_of(*query_floats, query_used);
      *reference_floats = max_of(*reference_floats, reference_used);
      panels_before[p + 1] = panels_before[p] + (shares ? 0 : ceil_div(Q, MR)) + ceil_div(R, NR);
      previous = p;
    }
    group_begin[*groups] = n;

    int64_t* tiles_before = plan.tiles_before(n);
    int64_t* tile_shape = plan.group_tile_shape(n);
    tiles_before[0] = 0;
    for (int64_t g = 0; g < *groups; ++g) {
      const int64_t p0 = group_begin[g], p1 = group_begin[g + 1];
      int64_t mc = kQueryPanelsPerTile, nc = max_of(1, kL2TileBytes / (4 * T2 * D * NR));
      while (group_tiles(pairs, p0, p1, mc, nc) < 4 * static_cast<int64_t>(threads) && (mc > 1 || nc > 1)) {
        if (nc > 1) {
          nc = ceil_div(nc, 2);
        } else {
          mc = ceil_div(mc, 2);
        }
      }
      tile_shape[2 * g] = mc;
      tile_shape[2 * g + 1] = nc;
      for (int64_t p = p0; p < p1; ++p) tiles_before[p + 1] = tiles_before[p] + pair_tiles(pairs[p], mc, nc);
    }
  }

  static int64_t pair_tiles(const SimilarityPair& pair, int64_t mc, int64_t nc) {
    return ceil_div(ceil_div(pair.query_frames, MR), mc) * ceil_div(ceil_div(pair.reference_frames, NR), nc);
  }

  static int64_t group_tiles(const SimilarityPair* pairs, int64_t p0, int64_t p1, int64_t mc, int64_t nc) {
    int64_t tiles = 0;
    for (int64_t p = p0; p < p1; ++p) tiles += pair_tiles(pairs[p], mc, nc);
    return tiles;
  }

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
