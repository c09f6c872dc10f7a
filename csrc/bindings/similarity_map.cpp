// Python bindings of the similarity map (csrc/include/vcl_fast/similarity_map.h). The user-facing op with
// its input checks is vcl_fast.ops.similarity; these entry points only guard what they are handed.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "include/vcl_fast/similarity_map.h"

namespace py = pybind11;

namespace vcl_fast {
namespace {

FeatureType feature_type(const py::array& a) {
  if (a.dtype().num() == py::dtype::num_of<float>()) return FeatureType::Float32;  // by value: unpickled dtypes are copies
  if (a.dtype().kind() == 'f' && a.itemsize() == 2) return FeatureType::Float16;
  throw py::type_error("similarity_map_cpu: features must be float32 or float16, got " +
                       std::string(py::str(a.dtype())));
}

// Checks one (frames, tokens, D) feature array and returns its tokens.
int64_t feature_tokens(const py::array& a, FeatureType type, int64_t dim) {
  if (a.ndim() != 3) throw py::value_error("similarity_map_cpu: features must be 3-D (frames, tokens, dim)");
  if (!(a.flags() & py::array::c_style)) throw py::value_error("similarity_map_cpu: features must be C-contiguous");
  if (feature_type(a) != type) throw py::type_error("similarity_map_cpu: all features must share one dtype");
  if (a.shape(2) != dim) throw py::value_error("similarity_map_cpu: all features must share the last dimension");
  if (a.shape(1) < 1 || dim < 1) throw py::value_error("similarity_map_cpu: tokens and dim must be >= 1");
  return a.shape(1);
}

// The numpy arrays of a list, uncopied.
std::vector<py::array> array_list(const py::list& items) {
  std::vector<py::array> arrays;
  for (const py::handle item : items) {
    if (!py::isinstance<py::array>(item)) throw py::type_error("similarity_map_cpu: expected a list of numpy arrays");
    arrays.push_back(py::reinterpret_borrow<py::array>(item));
  }
  return arrays;
}

py::array_t<int32_t> similarity_map_cpu_py(const py::list& query_list, const py::list& reference_list, py::array out,
                                           bool normalized, const std::string& precision) {
  if (precision != "fp32" && precision != "int16") {
    throw py::value_error("similarity_map_cpu: precision must be 'fp32' or 'int16', got '" + precision + "'");
  }
  const std::vector<py::array> queries = array_list(query_list), references = array_list(reference_list);
  if (queries.size() != references.size()) {
    throw py::value_error("similarity_map_cpu: queries and references must have the same length");
  }
  const int64_t n = static_cast<int64_t>(queries.size());
  py::array_t<int32_t> flags(n);
  if (n == 0) return flags;
  const FeatureType type = feature_type(queries[0]);
  const int64_t dim = queries[0].ndim() == 3 ? queries[0].shape(2) : 0;
  const SimilarityLayout layout{feature_tokens(queries[0], type, dim), feature_tokens(references[0], type, dim),
                                dim, type, normalized,
                                precision == "int16" ? Precision::Int16 : Precision::Float32};
  if (out.dtype().num() != py::dtype::num_of<float>() || out.ndim() != 1 || !(out.flags() & py::array::c_style) ||
      !out.writeable()) {
    throw py::value_error("similarity_map_cpu: out must be a writeable contiguous 1-D float32 array");
  }
  std::vector<SimilarityPair> pairs(static_cast<size_t>(n));
  int64_t offset = 0;
  for (int64_t p = 0; p < n; ++p) {
    const py::array& q = queries[static_cast<size_t>(p)];
    const py::array& r = references[static_cast<size_t>(p)];
    if (feature_tokens(q, type, dim) != layout.query_tokens ||
        feature_tokens(r, type, dim) != layout.reference_tokens) {
      throw py::value_error("similarity_map_cpu: all queries (references) must have the same number of tokens");
    }
    pairs[static_cast<size_t>(p)] = {q.data(), q.shape(0), r.data(), r.shape(0), nullptr};
    offset += q.shape(0) * r.shape(0);
  }
  if (out.size() != offset) {
    throw py::value_error("similarity_map_cpu: out must hold " + std::to_string(offset) + " floats");
  }
  offset = 0;
  for (SimilarityPair& pair : pairs) {
    pair.out = static_cast<float*>(out.mutable_data()) + offset;
    offset += pair.query_frames * pair.reference_frames;
  }
  int32_t* flag_data = flags.mutable_data();
  {
    py::gil_scoped_release release;
    similarity_map_cpu(pairs.data(), n, layout, flag_data);
  }
  return flags;
}

}  // namespace

void register_similarity_map(py::module_& m) {
  m.def("similarity_map_cpu", &similarity_map_cpu_py, py::arg("queries"), py::arg("references"), py::arg("out"),
        py::arg("normalized"), py::arg("precision") = "fp32",
        "Max-over-token cosine maps of pairs (queries[p], references[p]) of C-contiguous (frames, tokens, D)\n"
        "float32/float16 arrays, written back to back (row-major, pair order) into the float32 array out.\n"
        "Consecutive pairs sharing a query array pack it once. Returns int32 flags per pair: bit 1 query,\n"
        "bit 2 reference holds NaN or infinity. precision: 'fp32' or 'int16' (quantised unit vectors, exact\n"
        "int32 dot products; always normalises).");
#ifdef VCL_FAST_WITH_CUDA
  m.def(
      "similarity_map_cuda",
      [](uintptr_t queries, uintptr_t references, uintptr_t pairs, int64_t num_pairs, int64_t max_query_frames,
         int64_t max_reference_frames, uintptr_t query_scale, uintptr_t reference_scale, uintptr_t flags,
         uintptr_t out, int device, int64_t query_tokens, int64_t reference_tokens, int64_t dim, bool half,
         bool normalized, uintptr_t stream) {
        if (num_pairs < 0 || query_tokens < 1 || reference_tokens < 1 || dim < 1) {
          throw py::value_error("similarity_map_cuda: num_pairs >= 0, tokens >= 1 and dim >= 1 are required");
        }
        const SimilarityCudaBatch batch{reinterpret_cast<const void*>(queries),
                                        reinterpret_cast<const void*>(references),
                                        reinterpret_cast<const int64_t*>(pairs),
                                        num_pairs,
                                        max_query_frames,
                                        max_reference_frames,
                                        reinterpret_cast<float*>(query_scale),
                                        reinterpret_cast<float*>(reference_scale),
                                        reinterpret_cast<int32_t*>(flags),
                                        reinterpret_cast<float*>(out),
                                        device};
        const SimilarityLayout layout{query_tokens, reference_tokens, dim,
                                      half ? FeatureType::Float16 : FeatureType::Float32, normalized};
        py::gil_scoped_release release;
        similarity_map_cuda(batch, layout, reinterpret_cast<void*>(stream));
      },
      py::kw_only(), py::arg("queries"), py::arg("references"), py::arg("pairs"), py::arg("num_pairs"),
      py::arg("max_query_frames"), py::arg("max_reference_frames"), py::arg("query_scale"),
      py::arg("reference_scale"), py::arg("flags"), py::arg("out"), py::arg("device"), py::arg("query_tokens"),
      py::arg("reference_tokens"), py::arg("dim"), py::arg("half"), py::arg("normalized"), py::arg("stream"),
      "Enqueues the similarity maps of a batch of pairs on a CUDA stream (device pointers as integers; see\n"
      "SimilarityCudaBatch in csrc/include/vcl_fast/similarity_map.h). Never synchronises the host.");
#endif
}

}  // namespace vcl_fast
