// Blocked, register-tiled CPU kernel of the similarity map (vcl_fast/similarity_map.h), written once over a
// vector type V and included by the scalar (similarity_map.cpp), AVX2 and AVX-512 translation units, each
// compiled with its own instruction-set flags. Everything here has internal linkage (anonymous namespace),
// so code built for one instruction set is never linked into another's callers.
//
// Scheme (like a BLIS GEMM with K = D): token vectors are converted to float32, L2-normalised and packed
// into panels of MR query frames / NR reference frames, laid out k-major (panel[(t * D + k) * ROWS + row])
// so the micro-kernel reads one broadcast per query frame and NV vectors of reference frames per k. The
// micro-kernel accumulates an MR x NR tile of dot products in registers for one token combination (a, b)
// and folds it into a running max held in a tiny L1 tile; the (Q*T) x (R*T2) token product never exists.
// Work is split over OpenMP threads in (MC x NC)-frame tiles, NC sized so its reference panels stay in L2.
//
// V provides: width, reg, zero(), load(const float*), load_half(const uint16_t*) (width IEEE halves),
// store(float*, reg), broadcast(const float*), fma(a, b, c) = a * b + c, max, add, sub, sum(reg).
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
// Below this many multiply-adds a call runs on one thread.
constexpr int64_t kParallelMinMacs = 1 << 20;

// A 64-byte aligned float buffer (C allocation: no library templates are instantiated here).
class FloatBuffer {
 public:
  explicit FloatBuffer(int64_t n) {
    const size_t bytes = static_cast<size_t>(ceil_div(max_of(n, 1) * 4, 64) * 64);
    data_ = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (data_ == nullptr) throw_bad_alloc();
  }
  ~FloatBuffer() { std::free(data_); }
  FloatBuffer(const FloatBuffer&) = delete;
  FloatBuffer& operator=(const FloatBuffer&) = delete;
  float* get() const { return data_; }

 private:
  [[noreturn]] static void throw_bad_alloc() { throw std::bad_alloc(); }
  float* data_;
};

template <class V, int MR, int NV>
class SimilarityKernel {
  using reg = typename V::reg;
  static constexpr int W = V::width;
  static constexpr int NR = NV * W;

 public:
  static void run(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& L, int32_t* flags) {
    const int64_t T = L.query_tokens, T2 = L.reference_tokens, D = L.dim;
    int64_t max_q = 0, max_r = 0, macs = 0;
    for (int64_t p = 0; p < num_pairs; ++p) {
      flags[p] = 0;
      max_q = max_of(max_q, pairs[p].query_frames);
      max_r = max_of(max_r, pairs[p].reference_frames);
      macs += pairs[p].query_frames * T * pairs[p].reference_frames * T2 * D;
    }
    if (max_q == 0 || max_r == 0) return;

    const int threads = macs >= kParallelMinMacs ? omp_get_max_threads() : 1;
    const int64_t row_floats = ceil_div(D, W) * W;
    FloatBuffer query_panels(ceil_div(max_q, MR) * T * D * MR);
    FloatBuffer reference_panels(ceil_div(max_r, NR) * T2 * D * NR);
    FloatBuffer scratch(threads * (row_floats + MR * NR));

#pragma omp parallel num_threads(threads)
    {
      float* row = scratch.get() + omp_get_thread_num() * (row_floats + MR * NR);
      float* tile = row + row_floats;
      const void* packed_query = nullptr;  // identical on every thread: all run the same pair loop
      int64_t packed_frames = 0;
      for (int64_t p = 0; p < num_pairs; ++p) {
        const SimilarityPair& pair = pairs[p];
        const int64_t Q = pair.query_frames, R = pair.reference_frames;
        if (Q == 0 || R == 0) continue;
        const bool pack_query = pair.query != packed_query || Q != packed_frames;
        packed_query = pair.query;
        packed_frames = Q;

        const int64_t query_panel_count = pack_query ? ceil_div(Q, MR) : 0;
        const int64_t panel_count = query_panel_count + ceil_div(R, NR);
#pragma omp for schedule(static)
        for (int64_t i = 0; i < panel_count; ++i) {
          bool finite;
          int32_t bit;
          if (i < query_panel_count) {
            finite = pack_panel<MR>(pair.query, i * MR, min_of(MR, Q - i * MR), T, L,
                                    query_panels.get() + i * T * D * MR, row);
            bit = kQueryNotFinite;
          } else {
            const int64_t j = i - query_panel_count;
            finite = pack_panel<NR>(pair.reference, j * NR, min_of(NR, R - j * NR), T2, L,
                                    reference_panels.get() + j * T2 * D * NR, row);
            bit = kReferenceNotFinite;
          }
          if (!finite) {
#pragma omp atomic
            flags[p] |= bit;
          }
        }  // implicit barrier: panels are ready

        int64_t mc_panels, nc_panels;
        choose_tiles(Q, R, T2 * D, threads, &mc_panels, &nc_panels);
        const int64_t tiles_n = ceil_div(ceil_div(R, NR), nc_panels);
        const int64_t tiles = ceil_div(ceil_div(Q, MR), mc_panels) * tiles_n;
#pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < tiles; ++t) {
          const int64_t ip0 = (t / tiles_n) * mc_panels, jp0 = (t % tiles_n) * nc_panels;
          const int64_t ip1 = min_of(ip0 + mc_panels, ceil_div(Q, MR));
          const int64_t jp1 = min_of(jp0 + nc_panels, ceil_div(R, NR));
          for (int64_t ip = ip0; ip < ip1; ++ip) {
            const float* a = query_panels.get() + ip * T * D * MR;
            for (int64_t jp = jp0; jp < jp1; ++jp) {
              micro_kernel(a, reference_panels.get() + jp * T2 * D * NR, T, T2, D, tile);
              store_tile(tile, pair.out, R, ip * MR, jp * NR, min_of(MR, Q - ip * MR), min_of(NR, R - jp * NR));
            }
          }
        }  // implicit barrier: the reference panels may be overwritten by the next pair
      }
    }
  }

 private:
  // Tile sizes in panels: NC panels of reference frames fill at most kL2TileBytes; both shrink (NC first)
  // until there are at least 4 tiles per thread, so small maps still use every thread.
  static void choose_tiles(int64_t Q, int64_t R, int64_t reference_floats_per_frame, int threads,
                           int64_t* mc_panels, int64_t* nc_panels) {
    *mc_panels = kQueryPanelsPerTile;
    *nc_panels = max_of(1, kL2TileBytes / (4 * reference_floats_per_frame * NR));
    const int64_t wanted = 4 * static_cast<int64_t>(threads);
    while (ceil_div(ceil_div(Q, MR), *mc_panels) * ceil_div(ceil_div(R, NR), *nc_panels) < wanted) {
      if (*nc_panels > 1) {
        *nc_panels = ceil_div(*nc_panels, 2);
      } else if (*mc_panels > 1) {
        *mc_panels = ceil_div(*mc_panels, 2);
      } else {
        break;
      }
    }
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

  // Packs frames [f0, f0 + rows) of features shaped (frames, tokens, D) into a panel of ROWS frames,
  // dst[(t * D + k) * ROWS + r] (rows past `rows` are zero), scaling each token vector to unit length
  // (zero vectors stay zero) unless L.normalized. Returns false when a feature is NaN or infinite.
  template <int ROWS>
  static bool pack_panel(const void* src, int64_t f0, int64_t rows, int64_t tokens, const SimilarityLayout& L,
                         float* dst, float* row) {
    const int64_t D = L.dim;
    const size_t item = L.type == FeatureType::Float16 ? 2 : 4;
    bool finite = true;
    for (int64_t t = 0; t < tokens; ++t) {
      float* panel = dst + t * D * ROWS;
      for (int64_t r = 0; r < ROWS; ++r) {
        if (r >= rows) {
          for (int64_t k = 0; k < D; ++k) panel[k * ROWS + r] = 0.0f;
          continue;
        }
        const void* vec = static_cast<const char*>(src) + ((f0 + r) * tokens + t) * D * item;
        reg squares = V::zero(), not_finite = V::zero();
        for (int64_t k = 0; k < D; k += W) {
          const reg x = load_features(vec, k, min_of(W, D - k), L.type);
          V::store(row + k, x);
          squares = V::fma(x, x, squares);
          not_finite = V::add(not_finite, V::sub(x, x));  // x - x is NaN exactly when x is NaN or infinite
        }
        if (!(V::sum(not_finite) == 0.0f)) finite = false;
        const float norm2 = V::sum(squares);
        const float scale = L.normalized ? 1.0f : (norm2 > 0.0f ? 1.0f / std::sqrt(norm2) : 0.0f);
        for (int64_t k = 0; k < D; ++k) panel[k * ROWS + r] = row[k] * scale;
      }
    }
    return finite;
  }

  // tile[r * NR + c] = max over a < T, b < T2 of sum_k A[(a * D + k) * MR + r] * B[(b * D + k) * NR + c].
  static void micro_kernel(const float* A, const float* B, int64_t T, int64_t T2, int64_t D, float* tile) {
    for (int64_t b = 0; b < T2; ++b) {
      for (int64_t a = 0; a < T; ++a) {
        reg c[MR][NV];
        for (int r = 0; r < MR; ++r)
          for (int v = 0; v < NV; ++v) c[r][v] = V::zero();
        const float* pa = A + a * D * MR;
        const float* pb = B + b * D * NR;
        for (int64_t k = 0; k < D; ++k, pa += MR, pb += NR) {
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
