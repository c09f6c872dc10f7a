// Python binding of the frame preprocessing (csrc/include/vcl_fast/frame_preprocess.h).
// vcl_fast/runtime/preprocess.py computes the taps and the per-channel scale/shift and checks the frames.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>

#include "include/vcl_fast/frame_preprocess.h"

namespace py = pybind11;

namespace vcl_fast {
namespace {

using FrameArray = py::array_t<uint8_t, py::array::c_style | py::array::forcecast>;
using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;
using IndexArray = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

// Taps of an axis from (size, K) index and weight arrays, checked against the input length; none: no resampling.
AxisTaps axis_taps(const std::optional<IndexArray>& index, const std::optional<FloatArray>& weight, int64_t in_size,
                   int64_t size, const char* axis) {
  if (!index && !weight) {
    if (in_size != size) throw py::value_error(std::string(axis) + " needs taps: its length differs from size");
    return {};
  }
  if (!index || !weight || index->ndim() != 2 || weight->ndim() != 2 || index->shape(0) != size ||
      weight->shape(0) != size || index->shape(1) != weight->shape(1) || index->shape(1) < 1) {
    throw py::value_error(std::string(axis) + " taps must be (size, K) index and weight arrays, K >= 1");
  }
  const int64_t* data = index->data();
  for (py::ssize_t i = 0; i < index->size(); ++i) {
    if (data[i] < 0 || data[i] >= in_size) throw py::value_error(std::string(axis) + " tap index out of range");
  }
  return {data, weight->data(), index->shape(1)};
}

FloatArray preprocess_frames_cpu(const FrameArray& frames, int64_t size, const std::optional<IndexArray>& row_index,
                                 const std::optional<FloatArray>& row_weight,
                                 const std::optional<IndexArray>& col_index,
                                 const std::optional<FloatArray>& col_weight, const FloatArray& scale,
                                 const FloatArray& shift) {
  if (frames.ndim() != 4 || frames.shape(3) != 3) throw py::value_error("frames must be (N, H, W, 3) uint8");
  if (size < 1) throw py::value_error("size must be >= 1");
  if (scale.size() != 3 || shift.size() != 3) throw py::value_error("scale and shift need 3 values");
  const int64_t n = frames.shape(0), height = frames.shape(1), width = frames.shape(2);
  const AxisTaps rows = axis_taps(row_index, row_weight, height, size, "rows");
  const AxisTaps cols = axis_taps(col_index, col_weight, width, size, "columns");
  FloatArray out({static_cast<py::ssize_t>(n), py::ssize_t{3}, static_cast<py::ssize_t>(size),
                  static_cast<py::ssize_t>(size)});
  float* target = out.mutable_data();
  {
    py::gil_scoped_release release;
    preprocess_frames(frames.data(), n, height, width, size, rows, cols, scale.data(), shift.data(), target);
  }
  return out;
}

}  // namespace

void register_frame_preprocess(py::module_& m) {
  m.def("preprocess_frames_cpu", &preprocess_frames_cpu, py::arg("frames"), py::arg("size"), py::arg("row_index"),
        py::arg("row_weight"), py::arg("col_index"), py::arg("col_weight"), py::arg("scale"), py::arg("shift"),
        "(N, H, W, 3) uint8 frames -> (N, 3, size, size) float32: rows then columns resampled with (size, K) "
        "int64 index / float32 weight taps (None: that axis already has length size), then x * scale[c] - "
        "shift[c]. Releases the GIL.");
}

}  // namespace vcl_fast
