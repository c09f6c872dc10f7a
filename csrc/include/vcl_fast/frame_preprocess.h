// Frames -> extractor input: a separable resize with precomputed filter taps (rows, then columns), then
// out = pixel * scale[c] - shift[c] per channel, laid out channels first. The plain numpy reference is
// vcl_fast.runtime.preprocess.preprocess_frames_numpy; results are identical bit for bit (same float32
// operations in the same order, no fused multiply-add).
#pragma once

#include <cstdint>

namespace vcl_fast {

// Filter taps of one axis: output position o reads input index[o * taps + k] with weight[o * taps + k]
// (float32), summed for k = 0 .. taps - 1 in order. index == nullptr: the axis is not resampled.
struct AxisTaps {
  const int64_t* index = nullptr;
  const float* weight = nullptr;
  int64_t taps = 0;
};

// frames: (n, height, width, 3) uint8, C-contiguous. out: (n, 3, size, size) float32. `rows` resamples
// height -> size (nullptr index: height == size), `cols` width -> size (nullptr index: width == size).
// scale, shift: 3 float32 values. Runs on the calling thread (no OpenMP).
void preprocess_frames(const uint8_t* frames, int64_t n, int64_t height, int64_t width, int64_t size,
                       const AxisTaps& rows, const AxisTaps& cols, const float* scale, const float* shift,
                       float* out);

}  // namespace vcl_fast
