// Python bindings of the compiled core: vcl_fast._C.
// Each op registers its own functions from csrc/bindings/<op>.cpp: declare its register_* function
// below and call it in the module body.
#include <pybind11/pybind11.h>

#include <string>

#include "cpu/cpu_features.h"
#include "include/vcl_fast/cuda_runtime_info.h"

namespace py = pybind11;
using vcl_fast::cpu::SimdLevel;

// Op registrations (csrc/bindings/*.cpp).
namespace vcl_fast {
void register_alignment_paths(py::module_& m);
void register_frame_preprocess(py::module_& m);
void register_similarity_map(py::module_& m);
}  // namespace vcl_fast
void register_segment_nms(py::module_& m);

PYBIND11_MODULE(_C, m) {
  m.doc() = "vcl_fast compiled core (torch-free C++17/CUDA kernels)";

  m.def("simd_level", [] { return vcl_fast::cpu::simd_level_name(vcl_fast::cpu::simd_level()); },
        "SIMD code path CPU kernels use now: 'scalar', 'avx2' or 'avx512'.");
  m.def("cpu_simd_level", [] { return vcl_fast::cpu::simd_level_name(vcl_fast::cpu::cpu_simd_level()); },
        "Best SIMD code path this CPU supports.");
  m.def(
      "set_simd_level",
      [](const std::string& name) {
        if (name == "scalar") vcl_fast::cpu::set_simd_level(SimdLevel::Scalar);
        else if (name == "avx2") vcl_fast::cpu::set_simd_level(SimdLevel::AVX2);
        else if (name == "avx512") vcl_fast::cpu::set_simd_level(SimdLevel::AVX512);
        else throw py::value_error("SIMD level must be 'scalar', 'avx2' or 'avx512', got '" + name + "'");
        return vcl_fast::cpu::simd_level_name(vcl_fast::cpu::simd_level());
      },
      py::arg("level"),
      "Select the SIMD code path (capped to what the CPU supports); returns the level in use.");
  m.def("cuda_compiled", &vcl_fast::cuda_compiled, "True when the CUDA kernels were built in.");
  m.def("cuda_device_count", &vcl_fast::cuda_device_count,
        "Number of visible CUDA devices (0 without a driver or GPU, or when CUDA is not compiled in).");
  vcl_fast::register_alignment_paths(m);
  vcl_fast::register_frame_preprocess(m);
  vcl_fast::register_similarity_map(m);
  register_segment_nms(m);

}
