// Whether CUDA kernels are compiled in, and how many devices the CUDA runtime sees.
#pragma once

namespace vcl_fast {

bool cuda_compiled();
int cuda_device_count();  // never throws: 0 when no driver or device is present

}  // namespace vcl_fast
