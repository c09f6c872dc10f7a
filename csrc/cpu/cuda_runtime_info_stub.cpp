// cuda_runtime_info for builds without CUDA (the CUDA build defines these in csrc/cuda/).
#ifndef VCL_FAST_WITH_CUDA
#include "include/vcl_fast/cuda_runtime_info.h"

namespace vcl_fast {
bool cuda_compiled() { return false; }
int cuda_device_count() { return 0; }
}  // namespace vcl_fast
#endif
