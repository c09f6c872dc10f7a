// CPU path searches of the DTW, DP and TN localizers (declarations and semantics in the header).
#include "include/vcl_fast/alignment_paths.h"

#include <algorithm>
#include <limits>

namespace vcl_fast {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Step codes of the back-tracking tables: 0 diagonal, 1 vertical (row - 1), 2 horizontal (col - 1).
constexpr int8_t kNoStep = -1;

void step_back(int8_t step, int64_t& i, int64_t& j) {
  if (step == 0) {
    --i;
    --j;
  } else if (step == 1) {
    --i;
  } else {
    --j;
  }
}

// Appends `path` (points from its end back to its start) to `out` in forward order.
void append_reversed(const std::vector<int64_t>& path, PathList& out) {
  for (size_t p = path.size(); p >= 2; p -= 2) {
    out.points.push_back(path[p - 2]);
    out.points.push_back(path[p - 1]);
  }
  out.offsets.push_back(static_cast<int64_t>(out.points.size() / 2));
}

}  // namespace

std::vector<int64_t> dtw_path(const double* cost, int64_t rows, int64_t cols) {
  std::vector<int64_t> path;
  if (rows == 0 || cols == 0) return path;
  std::vector<double> acc(static_cast<size_t>(rows * cols));
  acc[0] = cost[0];
  for (int64_t j = 1; j < cols; ++j) acc[j] = cost[j] + acc[j - 1];
  for (int64_t i = 1; i < rows; ++i) {
    const double* c = cost + i * cols;
    double* a = acc.data() + i * cols;
    const double* up = a - cols;
    a[0] = c[0] + up[0];
    for (int64_t j = 1; j < cols; ++j) a[j] = c[j] + std::min(std::min(up[j - 1], up[j]), a[j - 1]);
  }
  int64_t i = rows - 1, j = cols - 1;
  std::vector<int64_t> backward = {i, j};
  while (i > 0 || j > 0) {
    if (i == 0) {
      --j;
    } else if (j == 0) {
      --i;
    } else {
      const double diag = acc[(i - 1) * cols + j - 1], up = acc[(i - 1) * cols + j], left = acc[i * cols + j - 1];
      step_back(diag <= up && diag <= left ? 0 : (up <= left ? 1 : 2), i, j);
    }
    backward.push_back(i);
    backward.push_back(j);
  }
  PathList forward;
  append_reversed(backward, forward);
  return forward.points;
}

PathList mpdp_paths(const double* score, int64_t rows, int64_t cols, int64_t discontinue, double min_score,
                    int64_t max_paths) {
  PathList out;
  out.offsets.push_back(0);
  if (rows == 0 || cols == 0) return out;
  const size_t n = static_cast<size_t>(rows * cols);
  std::vector<double> dp(score, score + n);
  std::vector<int32_t> unmatched(n, 0);
  std::vector<int8_t> back(n, kNoStep);
  for (int64_t i = 1; i < rows; ++i) {
    const double* s_row = score + i * cols;
    const double* dp_up = dp.data() + (i - 1) * cols;
    const int32_t* run_up = unmatched.data() + (i - 1) * cols;
    double* dp_row = dp.data() + i * cols;
    int32_t* run_row = unmatched.data() + i * cols;
    int8_t* back_row = back.data() + i * cols;
    double dp_left = dp_row[0];  // carried in a register along the row
    int32_t run_left = 0;
    for (int64_t j = 1; j < cols; ++j) {
      const double s = s_row[j], half = 0.5 * s;
      const double diag = dp_up[j - 1] + s, up = dp_up[j] + half, left = dp_left + half;
      // First maximum of (diag, up, left), computed without branches: the winner is unpredictable.
      const double best_du = std::max(diag, up);
      const int up_wins = up > diag, left_wins = left > best_du;
      const int step = left_wins * 2 + (1 - left_wins) * up_wins;
      const int32_t prev_runs[3] = {run_up[j - 1], run_up[j], run_left};
      const int32_t run = s < min_score ? prev_runs[step] + 1 : 0;
      const bool extend = run <= discontinue;
      dp_left = extend ? std::max(best_du, left) : s;
      run_left = run;
      dp_row[j] = dp_left;
      run_row[j] = run;
      back_row[j] = extend ? static_cast<int8_t>(step) : kNoStep;
    }
  }

  // Row maxima (first column on ties) make each "first maximum in row-major order" cost O(rows).
  std::vector<double> row_max(rows);
  std::vector<int64_t> row_arg(rows);
  auto scan_row = [&](int64_t i) {
    const double* row = dp.data() + i * cols;
    const int64_t arg = std::max_element(row, row + cols) - row;  // first maximum
    row_max[i] = row[arg];
    row_arg[i] = arg;
  };
  for (int64_t i = 0; i < rows; ++i) scan_row(i);

  std::vector<int64_t> backward;
  for (int64_t p = 0; p < max_paths; ++p) {
    const int64_t top = std::max_element(row_max.begin(), row_max.end()) - row_max.begin();
    if (row_max[top] == -kInf) break;
    int64_t i = top, j = row_arg[top];
    backward.assign({i, j});
    const int64_t row_end = i, col_end = j;
    while (back[i * cols + j] != kNoStep) {
      int64_t pi = i, pj = j;
      step_back(back[i * cols + j], pi, pj);
      if (dp[pi * cols + pj] == -kInf) break;
      i = pi;
      j = pj;
      backward.push_back(i);
      backward.push_back(j);
    }
    append_reversed(backward, out);
    for (int64_t r = i; r <= row_end; ++r) {
      std::fill(dp.begin() + r * cols + j, dp.begin() + r * cols + col_end + 1, -kInf);
      scan_row(r);
    }
  }
  return out;
}

PathList tn_paths(const int64_t* top_cols, const double* top_sims, int64_t rows, int64_t k, int64_t max_step,
                  double min_sim, int64_t num_paths) {
  PathList out;
  out.offsets.push_back(0);
  const int64_t num_nodes = rows * k;
  if (num_nodes == 0) return out;

  // Edges in order of source row, then row step, so that a stable grouping by destination keeps each
  // node's incoming edges sorted by source node.
  std::vector<int64_t> edge_src, edge_dst;
  std::vector<double> edge_weight;
  std::vector<int64_t> reached, reached_now;  // columns reached from row q_i (sorted) / at this step
  for (int64_t qi = 0; qi < rows; ++qi) {
    reached.clear();
    for (int64_t qj = qi + 1; qj < std::min(rows, qi + max_step); ++qj) {
      reached_now.clear();
      for (int64_t r = 0; r < k; ++r) {
        const double s = top_sims[qj * k + r];
        if (!(s >= min_sim)) continue;
        const int64_t col_j = top_cols[qj * k + r];
        bool any = false;
        for (int64_t c = 0; c < k; ++c) {
          const int64_t col_i = top_cols[qi * k + c];
          const int64_t diff = col_j - col_i;
          if (diff <= 0 || diff >= max_step) continue;
          const auto between = std::upper_bound(reached.begin(), reached.end(), col_i);
          if (between != reached.end() && *between < col_j) continue;
          edge_src.push_back(qi * k + c);
          edge_dst.push_back(qj * k + r);
          edge_weight.push_back(s);
          any = true;
        }
        if (any) reached_now.push_back(col_j);
      }
      reached.insert(reached.end(), reached_now.begin(), reached_now.end());
      std::sort(reached.begin(), reached.end());
      reached.erase(std::unique(reached.begin(), reached.end()), reached.end());
    }
  }

  // Incoming edges per node (CSR, stable counting sort by destination).
  const size_t num_edges = edge_src.size();
  std::vector<int64_t> in_start(num_nodes + 1, 0), in_edge(num_edges);
  for (size_t e = 0; e < num_edges; ++e) ++in_start[edge_dst[e] + 1];
  for (int64_t v = 0; v < num_nodes; ++v) in_start[v + 1] += in_start[v];
  {
    std::vector<int64_t> fill(in_start.begin(), in_start.end() - 1);
    for (size_t e = 0; e < num_edges; ++e) in_edge[fill[edge_dst[e]]++] = static_cast<int64_t>(e);
  }

  std::vector<double> dist(num_nodes);
  std::vector<int64_t> pred_edge(num_nodes);
  std::vector<int64_t> backward;
  for (int64_t p = 0; p < num_paths; ++p) {
    int64_t end = 0;
    for (int64_t v = 0; v < num_nodes; ++v) {
      double best = -kInf;
      int64_t best_edge = -1;
      for (int64_t t = in_start[v]; t < in_start[v + 1]; ++t) {
        const int64_t e = in_edge[t];
        const double cand = dist[edge_src[e]] + edge_weight[e];
        if (cand > best) {
          best = cand;
          best_edge = e;
        }
      }
      const bool extend = best_edge >= 0 && best > 0.0;
      dist[v] = extend ? best : 0.0;
      pred_edge[v] = extend ? best_edge : -1;
      if (dist[v] > dist[end]) end = v;
    }
    if (!(dist[end] > 0.0)) break;
    backward.clear();
    for (int64_t v = end;;) {
      backward.push_back(v / k);
      backward.push_back(top_cols[v]);
      const int64_t e = pred_edge[v];
      if (e < 0) break;
      edge_weight[e] = 0.0;
      v = edge_src[e];
    }
    append_reversed(backward, out);
  }
  return out;
}

}  // namespace vcl_fast
