// CUDA similarity map (csrc/include/vcl_fast/similarity_map.h).
//
// Two launches on the caller's stream, no host synchronisation:
//  1. token_scales: one warp per token vector writes its scale (1 / L2 norm, 0 for a zero vector, 1 when the
//     features are trusted to be normalised) and flags NaN / infinity per pair.
//  2. a tiled kernel over (64 query frames x 64 reference frames) tiles of every pair: for each token
//     combination (a, b) it accumulates the 64 x 64 dot products over D, scales them by the two tokens' scales
//     and folds them into a running max kept in registers; only the (Q, R) map is written.
//     float16 features: WMMA 16x16x16 tensor-core fragments with float32 accumulation (4 warps, 32 x 32 each).
//     float32 features: SIMT, 256 threads with a 4 x 4 register tile each.
// Pairs come from a device table (see SimilarityCudaBatch); grid.x covers the tiles of the largest pair, a block
// whose tile lies outside a smaller pair returns at once; grid.y strides over the pairs.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "include/vcl_fast/similarity_map.h"

namespace vcl_fast {
namespace {

constexpr int kPairColumns = 6;  // query_row, query_frames, reference_row, reference_frames, out_offset, owns_query
constexpr int kTile = 64;        // frames per tile side (both kernels)
constexpr int kMaxGridY = 65535;

struct Pair {
  int64_t query_row, query_frames, reference_row, reference_frames, out_offset;
  bool owns_query;
};

__device__ Pair load_pair(const int64_t* table, int64_t p) {
  const int64_t* row = table + p * kPairColumns;
  return {row[0], row[1], row[2], row[3], row[4], row[5] != 0};
}

__device__ float to_float(float x) { return x; }
__device__ float to_float(__half x) { return __half2float(x); }

__device__ bool is_finite(float x) { return (__float_as_uint(x) & 0x7f800000u) != 0x7f800000u; }

// ---- 1. token scales and finiteness flags -------------------------------------------------------------------

constexpr int kScaleWarps = 8;

// One warp per token vector of pair blockIdx.y (+ k * gridDim.y): its query tokens first (when the pair owns
// its query), then its reference tokens.
template <typename Feature>
__global__ void __launch_bounds__(kScaleWarps * 32)
    token_scales(const Feature* queries, const Feature* references, const int64_t* table, int64_t num_pairs,
                 int64_t query_tokens, int64_t reference_tokens, int64_t dim, bool normalized, float* query_scale,
                 float* reference_scale, int32_t* flags) {
  const int lane = threadIdx.x % 32;
  const int64_t token = static_cast<int64_t>(blockIdx.x) * kScaleWarps + threadIdx.x / 32;
  for (int64_t p = blockIdx.y; p < num_pairs; p += gridDim.y) {
    const Pair pair = load_pair(table, p);
    if (pair.query_frames == 0 || pair.reference_frames == 0) continue;
    const int64_t own_query_tokens = pair.owns_query ? pair.query_frames * query_tokens : 0;
    const Feature* vec;
    float* scale;
    int32_t bit;
    if (token < own_query_tokens) {
      vec = queries + (pair.query_row * query_tokens + token) * dim;
      scale = query_scale + pair.query_row * query_tokens + token;
      bit = kQueryNotFinite;
    } else if (token - own_query_tokens < pair.reference_frames * reference_tokens) {
      const int64_t t = token - own_query_tokens;
      vec = references + (pair.reference_row * reference_tokens + t) * dim;
      scale = reference_scale + pair.reference_row * reference_tokens + t;
      bit = kReferenceNotFinite;
    } else {
      continue;  // warp-uniform
    }
    float squares = 0.0f;
    bool finite = true;
    for (int64_t k = lane; k < dim; k += 32) {
      const float x = to_float(vec[k]);
      squares += x * x;
      finite = finite && is_finite(x);
    }
    for (int offset = 16; offset > 0; offset /= 2) squares += __shfl_xor_sync(0xffffffffu, squares, offset);
    finite = __all_sync(0xffffffffu, finite);
    if (lane == 0) {
      *scale = normalized ? 1.0f : (squares > 0.0f ? rsqrtf(squares) : 0.0f);
      if (!finite) atomicOr(flags + p, bit);
    }
  }
}

// ---- 2a. float32: SIMT tiles ----------------------------------------------------------------------------------

constexpr int kSimtThreads = 256;  // 16 x 16, each a 4 x 4 tile of frames (rows ty + 16 r, columns tx + 16 c)
constexpr int kSimtK = 16;

__global__ void __launch_bounds__(kSimtThreads)
    similarity_simt(const float* queries, const float* references, const int64_t* table, int64_t num_pairs,
                    int64_t query_tokens, int64_t reference_tokens, int64_t dim, const float* query_scale,
                    const float* reference_scale, float* out, int64_t tiles_n) {
  __shared__ float As[kSimtK][kTile + 1];  // k-major; +1 keeps the transposing stores conflict-free
  __shared__ float Bs[kSimtK][kTile + 1];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const int64_t i0 = (blockIdx.x / tiles_n) * kTile, j0 = (blockIdx.x % tiles_n) * kTile;
  for (int64_t p = blockIdx.y; p < num_pairs; p += gridDim.y) {
    const Pair pair = load_pair(table, p);
    const int64_t Q = pair.query_frames, R = pair.reference_frames;
    if (i0 >= Q || j0 >= R) continue;  // block-uniform
    float best[4][4];
#pragma unroll
    for (int r = 0; r < 4; ++r)
#pragma unroll
      for (int c = 0; c < 4; ++c) best[r][c] = -INFINITY;
    for (int64_t a = 0; a < query_tokens; ++a) {
      for (int64_t b = 0; b < reference_tokens; ++b) {
        float acc[4][4] = {};
        for (int64_t k0 = 0; k0 < dim; k0 += kSimtK) {
          for (int e = threadIdx.x; e < kTile * kSimtK; e += kSimtThreads) {
            const int m = e / kSimtK, kk = e % kSimtK;
            const int64_t k = k0 + kk, i = i0 + m, j = j0 + m;
            As[kk][m] = (i < Q && k < dim) ? queries[((pair.query_row + i) * query_tokens + a) * dim + k] : 0.0f;
            Bs[kk][m] =
                (j < R && k < dim) ? references[((pair.reference_row + j) * reference_tokens + b) * dim + k] : 0.0f;
          }
          __syncthreads();
#pragma unroll
          for (int kk = 0; kk < kSimtK; ++kk) {
            float av[4], bv[4];
#pragma unroll
            for (int r = 0; r < 4; ++r) av[r] = As[kk][ty + 16 * r];
#pragma unroll
            for (int c = 0; c < 4; ++c) bv[c] = Bs[kk][tx + 16 * c];
#pragma unroll
            for (int r = 0; r < 4; ++r)
#pragma unroll
              for (int c = 0; c < 4; ++c) acc[r][c] = fmaf(av[r], bv[c], acc[r][c]);
          }
          __syncthreads();
        }
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          const int64_t i = i0 + ty + 16 * r;
          const float qs = i < Q ? query_scale[(pair.query_row + i) * query_tokens + a] : 0.0f;
#pragma unroll
          for (int c = 0; c < 4; ++c) {
            const int64_t j = j0 + tx + 16 * c;
            const float rs = j < R ? reference_scale[(pair.reference_row + j) * reference_tokens + b] : 0.0f;
            best[r][c] = fmaxf(best[r][c], acc[r][c] * qs * rs);
          }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      const int64_t i = i0 + ty + 16 * r;
#pragma unroll
      for (int c = 0; c < 4; ++c) {
        const int64_t j = j0 + tx + 16 * c;
        if (i < Q && j < R) out[pair.out_offset + i * R + j] = best[r][c];
      }
    }
  }
}

// ---- 2b. float16: WMMA tensor-core tiles ----------------------------------------------------------------------

constexpr int kWmmaThreads = 128;  // 4 warps in 2 x 2, each a 32 x 32 block of 2 x 2 fragments
constexpr int kWmmaK = 32;
constexpr int kLdAB = kWmmaK + 8;  // halves; a multiple of 8 as WMMA requires, padded against bank conflicts
constexpr int kLdC = kTile + 4;    // floats; a multiple of 4
constexpr int kPerThread = kTile * kTile / kWmmaThreads;  // epilogue elements per thread

__global__ void __launch_bounds__(kWmmaThreads)
    similarity_wmma(const __half* queries, const __half* references, const int64_t* table, int64_t num_pairs,
                    int64_t query_tokens, int64_t reference_tokens, int64_t dim, const float* query_scale,
                    const float* reference_scale, float* out, int64_t tiles_n) {
  using namespace nvcuda;
  __shared__ __align__(32) __half As[kTile * kLdAB];  // [query frame][k]
  __shared__ __align__(32) __half Bs[kTile * kLdAB];  // [reference frame][k]: column-major K x N for matrix_b
  __shared__ __align__(32) float Cs[kTile * kLdC];
  const int warp = threadIdx.x / 32, wm = warp / 2, wn = warp % 2;
  const int col = threadIdx.x % kTile;  // epilogue: element e is (row0 + 2 e, col)
  const int row0 = threadIdx.x / kTile;
  const int64_t i0 = (blockIdx.x / tiles_n) * kTile, j0 = (blockIdx.x % tiles_n) * kTile;
  const __half zero = __float2half(0.0f);
  for (int64_t p = blockIdx.y; p < num_pairs; p += gridDim.y) {
    const Pair pair = load_pair(table, p);
    const int64_t Q = pair.query_frames, R = pair.reference_frames;
    if (i0 >= Q || j0 >= R) continue;  // block-uniform
    const int64_t j = j0 + col;
    float best[kPerThread];
#pragma unroll
    for (int e = 0; e < kPerThread; ++e) best[e] = -INFINITY;
    for (int64_t a = 0; a < query_tokens; ++a) {
      for (int64_t b = 0; b < reference_tokens; ++b) {
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[2][2];
        for (int x = 0; x < 2; ++x)
          for (int y = 0; y < 2; ++y) wmma::fill_fragment(acc[x][y], 0.0f);
        for (int64_t k0 = 0; k0 < dim; k0 += kWmmaK) {
          for (int e = threadIdx.x; e < kTile * kWmmaK; e += kWmmaThreads) {
            const int m = e / kWmmaK, kk = e % kWmmaK;
            const int64_t k = k0 + kk, qi = i0 + m, rj = j0 + m;
            As[m * kLdAB + kk] = (qi < Q && k < dim) ? queries[((pair.query_row + qi) * query_tokens + a) * dim + k]
                                                     : zero;
            Bs[m * kLdAB + kk] =
                (rj < R && k < dim) ? references[((pair.reference_row + rj) * reference_tokens + b) * dim + k] : zero;
          }
          __syncthreads();
#pragma unroll
          for (int kk = 0; kk < kWmmaK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __half, wmma::row_major> fa[2];
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __half, wmma::col_major> fb[2];
            for (int x = 0; x < 2; ++x) wmma::load_matrix_sync(fa[x], As + (wm * 32 + x * 16) * kLdAB + kk, kLdAB);
            for (int y = 0; y < 2; ++y) wmma::load_matrix_sync(fb[y], Bs + (wn * 32 + y * 16) * kLdAB + kk, kLdAB);
            for (int x = 0; x < 2; ++x)
              for (int y = 0; y < 2; ++y) wmma::mma_sync(acc[x][y], fa[x], fb[y], acc[x][y]);
          }
          __syncthreads();
        }
        for (int x = 0; x < 2; ++x)
          for (int y = 0; y < 2; ++y)
            wmma::store_matrix_sync(Cs + (wm * 32 + x * 16) * kLdC + wn * 32 + y * 16, acc[x][y], kLdC,
                                    wmma::mem_row_major);
        __syncthreads();
        const float rs = j < R ? reference_scale[(pair.reference_row + j) * reference_tokens + b] : 0.0f;
#pragma unroll
        for (int e = 0; e < kPerThread; ++e) {
          const int64_t i = i0 + row0 + 2 * e;
          const float qs = i < Q ? query_scale[(pair.query_row + i) * query_tokens + a] : 0.0f;
          best[e] = fmaxf(best[e], Cs[(row0 + 2 * e) * kLdC + col] * qs * rs);
        }
        __syncthreads();  // Cs is rewritten by the next combination
      }
    }
#pragma unroll
    for (int e = 0; e < kPerThread; ++e) {
      const int64_t i = i0 + row0 + 2 * e;
      if (i < Q && j < R) out[pair.out_offset + i * R + j] = best[e];
    }
  }
}

// ---- host side ------------------------------------------------------------------------------------------------

void check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    cudaGetLastError();  // clear a non-sticky error so later calls report their own
    throw std::runtime_error(std::string("similarity_map_cuda: ") + what + ": " + cudaGetErrorString(status));
  }
}

// Makes `device` current for the scope (this module's CUDA runtime keeps its own current device).
class DeviceGuard {
 public:
  explicit DeviceGuard(int device) {
    check(cudaGetDevice(&previous_), "cudaGetDevice");
    if (previous_ != device) check(cudaSetDevice(device), "cudaSetDevice");
  }
  ~DeviceGuard() { cudaSetDevice(previous_); }
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename Feature>
using TileKernel = void (*)(const Feature*, const Feature*, const int64_t*, int64_t, int64_t, int64_t, int64_t,
                            const float*, const float*, float*, int64_t);

// Enqueues the token scales and then the tile kernel for one feature type.
template <typename Feature>
void enqueue(TileKernel<Feature> tiles, int threads, const char* name, const SimilarityCudaBatch& batch,
             const SimilarityLayout& layout, dim3 scale_grid, dim3 grid, int64_t tiles_n, cudaStream_t stream) {
  const auto* q = static_cast<const Feature*>(batch.queries);
  const auto* r = static_cast<const Feature*>(batch.references);
  const int64_t T = layout.query_tokens, T2 = layout.reference_tokens, D = layout.dim;
  token_scales<Feature><<<scale_grid, kScaleWarps * 32, 0, stream>>>(
      q, r, batch.pairs, batch.num_pairs, T, T2, D, layout.normalized, batch.query_scale, batch.reference_scale,
      batch.flags);
  check(cudaGetLastError(), "token_scales launch");
  tiles<<<grid, threads, 0, stream>>>(q, r, batch.pairs, batch.num_pairs, T, T2, D, batch.query_scale,
                                      batch.reference_scale, batch.out, tiles_n);
  check(cudaGetLastError(), name);
}

}  // namespace

void similarity_map_cuda(const SimilarityCudaBatch& batch, const SimilarityLayout& layout, void* stream_handle) {
  if (batch.num_pairs <= 0) return;
  const DeviceGuard guard(batch.device);
  const cudaStream_t stream = static_cast<cudaStream_t>(stream_handle);
  check(cudaMemsetAsync(batch.flags, 0, static_cast<size_t>(batch.num_pairs) * sizeof(int32_t), stream),
        "cudaMemsetAsync");
  if (batch.max_query_frames == 0 || batch.max_reference_frames == 0) return;

  const int64_t T = layout.query_tokens, T2 = layout.reference_tokens;
  const unsigned grid_y = static_cast<unsigned>(batch.num_pairs < kMaxGridY ? batch.num_pairs : kMaxGridY);
  const int64_t scale_blocks = ceil_div(batch.max_query_frames * T + batch.max_reference_frames * T2, kScaleWarps);
  const int64_t tiles_n = ceil_div(batch.max_reference_frames, kTile);
  const int64_t tiles = ceil_div(batch.max_query_frames, kTile) * tiles_n;
  if (tiles > 0x7fffffff || scale_blocks > 0x7fffffff) {
    throw std::runtime_error("similarity_map_cuda: a map or feature array is too large for one launch");
  }
  const dim3 scale_grid(static_cast<unsigned>(scale_blocks), grid_y);
  const dim3 grid(static_cast<unsigned>(tiles), grid_y);

  if (layout.type == FeatureType::Float16) {
    enqueue<__half>(similarity_wmma, kWmmaThreads, "similarity_wmma launch", batch, layout, scale_grid, grid,
                    tiles_n, stream);
  } else {
    enqueue<float>(similarity_simt, kSimtThreads, "similarity_simt launch", batch, layout, scale_grid, grid,
                   tiles_n, stream);
  }
}

}  // namespace vcl_fast
