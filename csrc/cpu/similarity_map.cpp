// CPU similarity map: run-time choice of the instruction-set variant, and the portable "scalar" variant
// (no instruction-set intrinsics; builds and runs on any CPU the compiler targets).
#include <cstdint>
#include <cstring>

#include "cpu/cpu_features.h"
#include "cpu/similarity_map_kernel.h"
#include "include/vcl_fast/similarity_map.h"

namespace vcl_fast {
namespace cpu {
namespace {

// IEEE binary16 -> binary32 (exact).
float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exponent = (h >> 10) & 0x1fu, mantissa = h & 0x3ffu;
  uint32_t bits;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (mantissa << 13);  // infinity / NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (mantissa << 13);  // normal: rebias 15 -> 127
  } else {
    const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;  // subnormal: m * 2^-24
    std::memcpy(&bits, &magnitude, sizeof(bits));
    bits |= sign;
  }
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

// Four-lane generic vector (GCC/Clang vector extension): SSE2 on any x86-64, NEON on ARM; no intrinsics.
struct Generic4 {
  using value = float;
  static constexpr int width = 4;
  typedef float reg __attribute__((vector_size(16)));
  static reg zero() { return reg{0.0f, 0.0f, 0.0f, 0.0f}; }
  static reg load(const float* p) {
    reg r;
    std::memcpy(&r, p, sizeof(r));
    return r;
  }
  static reg load_half(const uint16_t* p) {
    return reg{half_to_float(p[0]), half_to_float(p[1]), half_to_float(p[2]), half_to_float(p[3])};
  }
  static void store(float* p, reg a) { std::memcpy(p, &a, sizeof(a)); }
  static reg broadcast(const float* p) { return reg{*p, *p, *p, *p}; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static reg max(reg a, reg b) { return a > b ? a : b; }
  static reg add(reg a, reg b) { return a + b; }
  static reg sub(reg a, reg b) { return a - b; }
  static float sum(reg a) { return (a[0] + a[1]) + (a[2] + a[3]); }
};

// Four int32 lanes; fma is the int16-pair multiply-add: c + lo(a) * lo(b) + hi(a) * hi(b) per lane, the low
// and high 16 bits read as int16 (|each sum| <= 2 * 32767^2 < 2^31 for the kernel's quantised values).
struct GenericInt4 {
  using value = int32_t;
  static constexpr int width = 4;
  typedef int32_t reg __attribute__((vector_size(16)));
  typedef uint32_t bits __attribute__((vector_size(16)));
  static reg zero() { return reg{0, 0, 0, 0}; }
  static reg load(const int32_t* p) {
    reg r;
    std::memcpy(&r, p, sizeof(r));
    return r;
  }
  static void store(int32_t* p, reg a) { std::memcpy(p, &a, sizeof(a)); }
  static reg broadcast(const int32_t* p) { return reg{*p, *p, *p, *p}; }
  static reg low(reg a) { return reg(bits(a) << 16) >> 16; }  // arithmetic shift: sign-extends the low half
  static reg fma(reg a, reg b, reg c) { return c + (low(a) * low(b) + (a >> 16) * (b >> 16)); }
  static reg max(reg a, reg b) { return a > b ? a : b; }
};

struct GenericTranspose {
  // dst[kk * dst_stride + i] = src[i * src_stride + kk] * scale[i] for i < 8, kk < count <= 8.
  static void transpose8(const float* src, int64_t src_stride, float* dst, int64_t dst_stride, const float* scale,
                         int count) {
    for (int kk = 0; kk < count; ++kk) {
      for (int i = 0; i < 8; ++i) dst[kk * dst_stride + i] = src[i * src_stride + kk] * scale[i];
    }
  }
  // dst[kk * dst_stride + i] = src[i * src_stride + kk] for i < 8, kk < count <= 8.
  static void transpose8(const int32_t* src, int64_t src_stride, int32_t* dst, int64_t dst_stride, int count) {
    for (int kk = 0; kk < count; ++kk) {
      for (int i = 0; i < 8; ++i) dst[kk * dst_stride + i] = src[i * src_stride + kk];
    }
  }
};

}  // namespace

void similarity_map_scalar(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                           int32_t* flags) {
  if (layout.precision == Precision::Int16) {
    SimilarityKernel<Int16Panels<Generic4, GenericInt4, GenericTranspose, 6, 2>>::run(pairs, num_pairs, layout,
                                                                                        flags);
  } else {
    SimilarityKernel<Float32Panels<Generic4, GenericTranspose, 6, 2>>::run(pairs, num_pairs, layout, flags);
  }
}

}  // namespace cpu

void similarity_map_cpu(const SimilarityPair* pairs, int64_t num_pairs, const SimilarityLayout& layout,
                        int32_t* flags) {
  switch (cpu::simd_level()) {
    case cpu::SimdLevel::AVX512: return cpu::similarity_map_avx512(pairs, num_pairs, layout, flags);
    case cpu::SimdLevel::AVX2: return cpu::similarity_map_avx2(pairs, num_pairs, layout, flags);
    default: return cpu::similarity_map_scalar(pairs, num_pairs, layout, flags);
  }
}

}  // namespace vcl_fast
