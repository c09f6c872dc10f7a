// Run-time choice of the SIMD code path for CPU kernels.
#pragma once

#include <string>

namespace vcl_fast::cpu {

enum class SimdLevel { Scalar = 0, AVX2 = 1, AVX512 = 2 };

// Best level this CPU supports, capped by the VCL_FAST_SIMD environment variable
// (scalar | avx2 | avx512) when set; read once per process.
SimdLevel simd_level();

// Best level the CPU supports, ignoring VCL_FAST_SIMD.
SimdLevel cpu_simd_level();

// Overrides the level for the rest of the process (tests use it to run every path);
// a level above what the CPU supports is capped to it.
void set_simd_level(SimdLevel level);

std::string simd_level_name(SimdLevel level);

}  // namespace vcl_fast::cpu
