#include <cuda_runtime.h>

#include "include/vcl_fast/cuda_runtime_info.h"

namespace vcl_fast {

bool cuda_compiled() { return true; }

int cuda_device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls report their own
    return 0;
  }
  return n;
}

}  // namespace vcl_fast
