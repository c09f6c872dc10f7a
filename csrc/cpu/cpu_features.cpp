#include "cpu/cpu_features.h"

#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace vcl_fast::cpu {
namespace {

SimdLevel detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("fma")) {
    return SimdLevel::AVX512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return SimdLevel::AVX2;
#endif
  return SimdLevel::Scalar;
}

SimdLevel cap(SimdLevel wanted) {
  SimdLevel best = cpu_simd_level();
  return static_cast<int>(wanted) < static_cast<int>(best) ? wanted : best;
}

SimdLevel from_env() {
  const char* env = std::getenv("VCL_FAST_SIMD");
  if (env == nullptr || *env == '\0') return cpu_simd_level();
  std::string v(env);
  if (v == "scalar") return SimdLevel::Scalar;
  if (v == "avx2") return cap(SimdLevel::AVX2);
  if (v == "avx512") return cap(SimdLevel::AVX512);
  return cpu_simd_level();  // unknown values are reported by vcl_fast.info, not fatal here
}

std::atomic<int>& current() {
  static std::atomic<int> level{static_cast<int>(from_env())};
  return level;
}

}  // namespace

SimdLevel cpu_simd_level() {
  static const SimdLevel best = detect();
  return best;
}

SimdLevel simd_level() { return static_cast<SimdLevel>(current().load(std::memory_order_relaxed)); }

void set_simd_level(SimdLevel level) { current().store(static_cast<int>(cap(level))); }

std::string simd_level_name(SimdLevel level) {
  switch (level) {
    case SimdLevel::AVX512: return "avx512";
    case SimdLevel::AVX2: return "avx2";
    default: return "scalar";
  }
}

}  // namespace vcl_fast::cpu
