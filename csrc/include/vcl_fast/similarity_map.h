// Max-over-token-combination cosine similarity map.
//
// For a query video q (Q frames x T tokens x D) and a reference video r (R frames x T2 tokens x D):
//   S[i, j] = max over a < T, b < T2 of cos(q[i, a], r[j, b]),   S is Q x R float32, row-major.
// A zero token vector has similarity 0 with everything. Features are float32 or float16 (IEEE half),
// C-contiguous. With `normalized` the token vectors are trusted to have unit length; otherwise they are
// L2-normalised inside the kernel. Both backends report, per pair, whether a feature was NaN or infinite
// (the map of such a pair is meaningless); input validation with user-facing messages is done by the
// Python op (vcl_fast/ops/similarity.py) so that CPU and CUDA reject bad input identically.
#pragma once

#include <cstdint>

namespace vcl_fast {

// Bits of the per-pair flags both backends write.
constexpr int32_t kQueryNotFinite = 1;
constexpr int32_t kReferenceNotFinite = 2;

enum class FeatureType { Float32, Float16 };

// CPU arithmetic: float32 FMA (exact up to float32 rounding), or int16-quantised unit vectors with exact int32
// dot products (about 1.5x faster with AVX2; absolute error <= sqrt(D) / 32767 + D / (4 * 32767^2) + 2^-22,
// see vcl_fast.ops.similarity). The CUDA kernels always compute in float32 / float16 tensor cores.
enum class Precision { Float32, Int16 };

// What every pair of one call shares.
struct SimilarityLayout {
  int64_t query_tokens;      // T >= 1
  int64_t reference_tokens;  // T2 >= 1
  int64_t dim;               // D >= 1
  FeatureType type;
  bool normalized;  // Precision::Int16 normalises (in float64) whatever this says
  Precision precision = Precision::Float32;
};

// One (query, reference) pair of a CPU call; host pointers.
struct SimilarityPair {
  const void* query;  // query_frames x T x D
  int64_t query_frames;
  const void* reference;  // reference_frames x T2 x D
  int64_t reference_frames;
  float* out;  // query_frames x reference_frames
};

// CPU (SIMD level from cpu/cpu_features.h, OpenMP). Fills every pair's map and flags[p] with
// kQueryNotFinite / kReferenceNotFinite bits (0 when all features are finite). Consecutive pairs with the
// same query pointer and length (one query against many references) reuse its packed panels.
void similarity_map_cpu(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                        int32_t* flags);

// A batch on one CUDA device; every pointer is device memory.
struct SimilarityCudaBatch {
  const void* queries;     // query frames of all pairs back to back: rows of T x D
  const void* references;  // reference frames of all pairs back to back: rows of T2 x D
  // num_pairs x 5 int64: query_row, query_frames, reference_row, reference_frames, out_offset (floats).
  // A pair whose query_row and query_frames equal the previous pair's shares that query.
  const int64_t* pairs;
  int64_t num_pairs;
  int64_t max_query_frames;      // over the pairs (sizes the grid)
  int64_t max_reference_frames;  // over the pairs (sizes the grid)
  float* query_scale;            // scratch, (rows of queries) x T
  float* reference_scale;        // scratch, (rows of references) x T2
  int32_t* flags;                // num_pairs, written (zeroed first) by the call
  float* out;                    // maps of all pairs back to back
  int device;                    // CUDA device index of all the memory above
};

// CUDA: enqueues the work on `stream` (a cudaStream_t) without synchronising the host. float16 features
// use tensor cores (WMMA, float32 accumulation), float32 features a SIMT tiled kernel; the max over token
// combinations is fused into the epilogue. Throws std::runtime_error with the CUDA error string on failure.
void similarity_map_cuda(const SimilarityCudaBatch& batch, const SimilarityLayout& layout, void* stream);

}  // namespace vcl_fast
