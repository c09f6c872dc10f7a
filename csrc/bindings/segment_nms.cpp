// Python bindings of segment NMS: segment_nms_cpu (numpy arrays) and, in CUDA builds, segment_nms_cuda
// (device pointers + stream). vcl_fast/ops/nms.py checks shapes and dtypes and converts inputs first.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "include/vcl_fast/segment_nms.h"

namespace py = pybind11;

namespace {

using FloatArray = py::array_t<float, py::array::c_style>;
using IndexArray = py::array_t<int64_t, py::array::c_style>;

// (ok, keep): ok is False when a value is invalid (NaN/inf, q_e < q_s or r_e < r_s); keep is the (K,)
// int64 kept indices by decreasing score (empty when not ok).
py::tuple segment_nms_cpu(const FloatArray& boxes, const FloatArray& scores, const std::optional<IndexArray>& groups,
                          double iou_threshold) {
  if (boxes.ndim() != 2 || boxes.shape(1) != 4) throw py::value_error("boxes must have shape (N, 4)");
  const int64_t n = boxes.shape(0);
  if (scores.ndim() != 1 || scores.shape(0) != n) throw py::value_error("scores must have shape (N,)");
  if (groups && (groups->ndim() != 1 || groups->shape(0) != n)) throw py::value_error("groups must have shape (N,)");
  IndexArray keep(n);
  int64_t num_kept = 0;
  vcl_fast::NmsStatus status;
  {
    py::gil_scoped_release release;
    status = vcl_fast::segment_nms_cpu(boxes.data(), scores.data(), groups ? groups->data() : nullptr, n,
                                       iou_threshold, keep.mutable_data(), &num_kept);
  }
  IndexArray result(num_kept);
  if (num_kept > 0) std::memcpy(result.mutable_data(), keep.data(), sizeof(int64_t) * num_kept);
  return py::make_tuple(status == vcl_fast::NmsStatus::Ok, result);
}

}  // namespace

void register_segment_nms(py::module_& m) {
  m.def("segment_nms_cpu", &segment_nms_cpu, py::arg("boxes").noconvert(), py::arg("scores").noconvert(),
        py::arg("groups").noconvert() = py::none(), py::arg("iou_threshold"),
        "Greedy NMS of float32 (N, 4) boxes [q_s, r_s, q_e, r_e] with (N,) float32 scores and optional (N,) "
        "int64 groups. Returns (ok, keep): ok False when a value is NaN/inf or a box is inverted; keep the "
        "(K,) int64 kept indices by decreasing score.");
#ifdef VCL_FAST_WITH_CUDA
  m.def(
      "segment_nms_cuda",
      [](std::uintptr_t boxes, std::uintptr_t scores, std::uintptr_t groups, int64_t n, double iou_threshold,
         std::uintptr_t keep, std::uintptr_t stream) {
        int64_t num_kept = 0;
        vcl_fast::NmsStatus status;
        {
          py::gil_scoped_release release;
          status = vcl_fast::segment_nms_cuda(
              reinterpret_cast<const float*>(boxes), reinterpret_cast<const float*>(scores),
              reinterpret_cast<const int64_t*>(groups), n, iou_threshold, reinterpret_cast<int64_t*>(keep),
              &num_kept, stream);
        }
        return py::make_tuple(status == vcl_fast::NmsStatus::Ok, num_kept);
      },
      py::arg("boxes"), py::arg("scores"), py::arg("groups"), py::arg("n"), py::arg("iou_threshold"),
      py::arg("keep"), py::arg("stream"),
      "Greedy NMS on the current CUDA device. Device pointers: C-contiguous float32 (n, 4) boxes and (n,) "
      "scores, (n,) int64 groups or 0 for none, (n,) int64 keep output; stream: a cudaStream_t. Returns "
      "(ok, num_kept): the kept indices by decreasing score are keep[:num_kept].");
#endif
}
