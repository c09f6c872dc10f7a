// 8 x 8 float / int32 transpose with AVX, shared by the AVX2 and AVX-512 variants of the similarity map kernel
// (the P policy of csrc/cpu/similarity_map_kernel.h). Internal linkage, like the kernel.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace vcl_fast::cpu {
namespace {

struct Transpose8Avx {
  // dst[kk * dst_stride + i] = src[i * src_stride + kk] * scale[i] for i < 8, kk < count <= 8.
  static void transpose8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, const float* scale,
                         int count) {
    __m256 c[8];
    columns(src, src_stride, c);
    const __m256 s = _mm256_loadu_ps(scale);
    for (int kk = 0; kk < count; ++kk) _mm256_storeu_ps(dst + kk * dst_stride, _mm256_mul_ps(c[kk], s));
  }

  // dst[kk * dst_stride + i] = src[i * src_stride + kk] for i < 8, kk < count <= 8 (bits moved unchanged).
  static void transpose8(const int32_t* src, int64_t src_stride, int32_t* dst, int64_t dst_stride, int count) {
    __m256 c[8];
    columns(reinterpret_cast<const float*>(src), src_stride, c);
    for (int kk = 0; kk < count; ++kk) _mm256_storeu_ps(reinterpret_cast<float*>(dst + kk * dst_stride), c[kk]);
  }

 private:
  // c[j][i] = src[i * src_stride + j] for i, j < 8, by shuffles only (any bit pattern passes unchanged).
  static void columns(const float* src, int64_t src_stride, __m256 c[8]) {
    __m256 r[8];
    for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(src + i * src_stride);
    // pairs of rows interleaved, then quadruples, then the 128-bit halves: column j ends in c[j]
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    c[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
    c[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    c[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
    c[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    c[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
    c[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    c[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
    c[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
  }
};

}  // namespace
}  // namespace vcl_fast::cpu
