// Python bindings of the localizer path searches (csrc/include/vcl_fast/alignment_paths.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <algorithm>
#include <string>
#include <utility>

#include "include/vcl_fast/alignment_paths.h"

namespace py = pybind11;

namespace vcl_fast {
namespace {

using DoubleMap = py::array_t<double, py::array::c_style | py::array::forcecast>;
using IndexMap = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

void check_matrix(const py::array& a, const char* name) {
  if (a.ndim() != 2) {
    throw py::value_error(std::string(name) + " must be 2-D (rows, cols), got " + std::to_string(a.ndim()) +
                          " dimensions");
  }
}

void check_non_negative(int64_t value, const char* name) {
  if (value < 0) throw py::value_error(std::string(name) + " must be >= 0, got " + std::to_string(value));
}

// (num_points, 2) int64 array of (row, col) points.
py::array_t<int64_t> points_array(const std::vector<int64_t>& points) {
  py::array_t<int64_t> out({static_cast<py::ssize_t>(points.size() / 2), py::ssize_t{2}});
  std::copy(points.begin(), points.end(), out.mutable_data());
  return out;
}

py::tuple path_list_arrays(const vcl_fast::PathList& paths) {
  py::array_t<int64_t> offsets(static_cast<py::ssize_t>(paths.offsets.size()));
  std::copy(paths.offsets.begin(), paths.offsets.end(), offsets.mutable_data());
  return py::make_tuple(points_array(paths.points), offsets);
}

}  // namespace

void register_alignment_paths(py::module_& m) {
  m.def(
      "dtw_path",
      [](const DoubleMap& cost) {
        check_matrix(cost, "cost");
        std::vector<int64_t> points;
        {
          py::gil_scoped_release release;
          points = vcl_fast::dtw_path(cost.data(), cost.shape(0), cost.shape(1));
        }
        return points_array(points);
      },
      py::arg("cost"),
      "Minimum-cost DTW path of a (Q, R) float64 cost map from (0, 0) to (Q-1, R-1): (L, 2) int64 points.");
  m.def(
      "mpdp_paths",
      [](const DoubleMap& score, int64_t discontinue, double min_score, int64_t max_paths) {
        check_matrix(score, "score");
        check_non_negative(discontinue, "discontinue");
        check_non_negative(max_paths, "max_paths");
        vcl_fast::PathList paths;
        {
          py::gil_scoped_release release;
          paths = vcl_fast::mpdp_paths(score.data(), score.shape(0), score.shape(1), discontinue, min_score,
                                       max_paths);
        }
        return path_list_arrays(paths);
      },
      py::arg("score"), py::arg("discontinue"), py::arg("min_score"), py::arg("max_paths"),
      "mPDP matching paths of a (Q, R) float64 score map: (points (P, 2) int64, offsets (n + 1,) int64).");
  m.def(
      "tn_paths",
      [](const IndexMap& top_cols, const DoubleMap& top_sims, int64_t max_step, double min_sim, int64_t num_paths) {
        check_matrix(top_cols, "top_cols");
        check_matrix(top_sims, "top_sims");
        if (top_cols.shape(0) != top_sims.shape(0) || top_cols.shape(1) != top_sims.shape(1)) {
          throw py::value_error("top_cols and top_sims must be (Q, k) arrays of the same shape");
        }
        check_non_negative(max_step, "max_step");
        check_non_negative(num_paths, "num_paths");
        vcl_fast::PathList paths;
        {
          py::gil_scoped_release release;
          paths = vcl_fast::tn_paths(top_cols.data(), top_sims.data(), top_cols.shape(0), top_cols.shape(1),
                                     max_step, min_sim, num_paths);
        }
        return path_list_arrays(paths);
      },
      py::arg("top_cols"), py::arg("top_sims"), py::arg("max_step"), py::arg("min_sim"), py::arg("num_paths"),
      "Temporal-network longest paths over each row's top-k columns: (points (P, 2) int64, offsets (n + 1,)).");
}

}  // namespace vcl_fast
