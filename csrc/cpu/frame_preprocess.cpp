// CPU frame preprocessing (declarations and semantics in the header). Compiled with -ffp-contract=off:
// each sum is acc = acc + float(x) * w in float32, tap by tap, as numpy evaluates its reference.
// Both passes resample whole contiguous lines (the column pass works on the transposed image), so the
// inner loops vectorise.
#include "include/vcl_fast/frame_preprocess.h"

#include <cstddef>
#include <vector>

namespace vcl_fast {
namespace {

// out line o (line_len values) = sum_k in line index[o, k] * weight[o, k], for o < size.
template <typename T>
void resample_lines(const T* in, int64_t line_len, const AxisTaps& taps, int64_t size, float* out) {
  for (int64_t o = 0; o < size; ++o) {
    float* acc = out + o * line_len;
    for (int64_t j = 0; j < line_len; ++j) acc[j] = 0.0f;
    for (int64_t k = 0; k < taps.taps; ++k) {
      const T* src = in + taps.index[o * taps.taps + k] * line_len;
      const float w = taps.weight[o * taps.taps + k];
      for (int64_t j = 0; j < line_len; ++j) acc[j] = acc[j] + static_cast<float>(src[j]) * w;
    }
  }
}

// (rows, cols, 3) -> (cols, rows, 3) float32.
template <typename T>
void transpose_pixels(const T* in, int64_t rows, int64_t cols, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) {
      for (int64_t ch = 0; ch < 3; ++ch) out[(c * rows + r) * 3 + ch] = static_cast<float>(in[(r * cols + c) * 3 + ch]);
    }
  }
}

// (size, size, 3) pixels at in[r * row_step + c * col_step + ch] -> (3, size, size) x * scale - shift.
template <typename T>
void normalise(const T* in, int64_t size, int64_t row_step, int64_t col_step, const float* scale, const float* shift,
               float* out) {
  for (int64_t ch = 0; ch < 3; ++ch) {
    float* plane = out + ch * size * size;
    for (int64_t r = 0; r < size; ++r) {
      for (int64_t c = 0; c < size; ++c) {
        plane[r * size + c] = static_cast<float>(in[r * row_step + c * col_step + ch]) * scale[ch] - shift[ch];
      }
    }
  }
}

// Column pass and normalisation of one (size, width, 3) frame whose rows are done (uint8 or float32).
template <typename T>
void finish_frame(const T* in, int64_t width, int64_t size, const AxisTaps& cols, const float* scale,
                  const float* shift, std::vector<float>& transposed, std::vector<float>& resized, float* out) {
  if (cols.index == nullptr) {
    normalise(in, size, width * 3, 3, scale, shift, out);
    return;
  }
  transpose_pixels(in, size, width, transposed.data());           // (width, size, 3)
  resample_lines(transposed.data(), size * 3, cols, size, resized.data());  // (size cols, size rows, 3)
  normalise(resized.data(), size, 3, size * 3, scale, shift, out);
}

}  // namespace

void preprocess_frames(const uint8_t* frames, int64_t n, int64_t height, int64_t width, int64_t size,
                       const AxisTaps& rows, const AxisTaps& cols, const float* scale, const float* shift,
                       float* out) {
  const int64_t row_len = width * 3;
  std::vector<float> row_pass(rows.index != nullptr ? static_cast<std::size_t>(size * row_len) : 0);
  std::vector<float> transposed(cols.index != nullptr ? static_cast<std::size_t>(size * row_len) : 0);
  std::vector<float> resized(cols.index != nullptr ? static_cast<std::size_t>(size * size * 3) : 0);
  for (int64_t f = 0; f < n; ++f) {
    const uint8_t* frame = frames + f * height * row_len;
    float* target = out + f * 3 * size * size;
    if (rows.index != nullptr) {
      resample_lines(frame, row_len, rows, size, row_pass.data());
      finish_frame(row_pass.data(), width, size, cols, scale, shift, transposed, resized, target);
    } else {
      finish_frame(frame, width, size, cols, scale, shift, transposed, resized, target);
    }
  }
}

}  // namespace vcl_fast
