// Path searches of the classical temporal-alignment localizers (VCSL benchmark: DTW, DP, TN) on a
// frame-to-frame map of shape (rows = query frames, cols = reference frames), row-major float64.
// The plain numpy references are in vcl_fast/ops/alignment_paths.py; results are identical.
#pragma once

#include <cstdint>
#include <vector>

namespace vcl_fast {

// Several paths as one flat list of (row, col) points: path p is points [offsets[p], offsets[p + 1]).
struct PathList {
  std::vector<int64_t> points;   // row, col, row, col, ... (2 values per point)
  std::vector<int64_t> offsets;  // num_paths + 1 values, offsets[0] == 0
};

// Dynamic time warping: the minimum-cost path from (0, 0) to (rows - 1, cols - 1) with diagonal,
// vertical and horizontal unit steps, acc[i][j] = cost[i][j] + min(acc[i-1][j-1], acc[i-1][j], acc[i][j-1]).
// Back-tracking prefers the diagonal, then the vertical, then the horizontal step on ties.
// Returns the points from (0, 0) on, 2 values per point; empty when the map is empty.
std::vector<int64_t> dtw_path(const double* cost, int64_t rows, int64_t cols);

// mPDP matching paths on a non-negative score map (similarity + 1 in the VCSL benchmark):
// dp[i][j] = max(dp[i-1][j-1] + s, dp[i-1][j] + s / 2, dp[i][j-1] + s / 2) (first maximum wins) for
// i, j >= 1; a cell with s < min_score extends its predecessor's run of unmatched cells, and a cell
// whose run exceeds `discontinue` starts a new path (dp = s). Up to `max_paths` times: back-track from
// the first maximum of dp in row-major order until a masked cell, then mask the path's bounding box.
PathList mpdp_paths(const double* score, int64_t rows, int64_t cols, int64_t discontinue, double min_score,
                    int64_t max_paths);

// Temporal network: nodes are each row's k best columns (top_cols, top_sims: (rows, k) row-major).
// Edge (q_i, c) -> (q_j, r) when 0 < q_j - q_i < max_step, 0 < col_r - col_c < max_step,
// sim(q_j, r) >= min_sim, and no column already reached from row q_i at a smaller row step lies strictly
// between the two columns; its weight is sim(q_j, r). `num_paths` times: take the maximum-weight path
// (a node continues its best predecessor only when that gives a positive weight; ties go to the smaller
// node index, node index = row * k + rank), stop when no positive path is left, and zero its edge weights.
PathList tn_paths(const int64_t* top_cols, const double* top_sims, int64_t rows, int64_t k, int64_t max_step,
                  double min_sim, int64_t num_paths);

}  // namespace vcl_fast
