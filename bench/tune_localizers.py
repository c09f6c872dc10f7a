"""Tune the classical localizers' similarity thresholds on a generated TRAINING set (grid search on segment F).

The VCSL-tuned defaults (``vcl_fast.eval.localizers``) were chosen for other features; this picks, per method,
the ``min_sim`` (and for DP ``ave_sim``) value with the best segment F on ``--data``, to be evaluated on a
held-out set with ``bench/eval_generated.py --tuned tuned.json``.

    PYTHONPATH=. python bench/tune_localizers.py --data TRAIN_DIR [--every 3] --json tuned.json
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.eval.localizers import align
from eval_generated import load_pairs, score

GRID = {
    "hv": [{"min_sim": v} for v in (0.7, 0.8, 0.85, 0.9, 0.95)],
    "tn": [{"min_sim": v} for v in (0.2, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)],
    "dp": [{"min_sim": v, "ave_sim": a} for v in (0.8, 0.85, 0.9, 0.95) for a in (1.1, 1.3, 1.5)],
    "dtw": [{"min_sim": v} for v in (0.3, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="generated-pair directory (a training set)")
    parser.add_argument("--every", type=int, default=1, help="use every N-th pair (default 1)")
    parser.add_argument("--json", required=True, help="write {method: best parameters} here")
    args = parser.parse_args(argv)
    maps, pairs, labels = load_pairs(args.data)
    keep = np.arange(0, len(pairs), args.every)
    maps, pairs = [maps[i] for i in keep], [pairs[i] for i in keep]
    labels = {p: labels[p] for p in pairs if p in labels}
    best = {}
    for method, grid in GRID.items():
        scored = []
        for params in grid:
            predictions = {pair: align(sim, method, **params).astype(np.float64) for pair, sim in zip(pairs, maps)}
            scored.append((score(labels, predictions, pairs)["segment_f1"], params))
            print(f"{method} {params}: segment F {scored[-1][0]:.3f}", file=sys.stderr)
        f1, params = max(scored, key=lambda item: item[0])
        best[method] = {"params": params, "train_segment_f1": f1}
    with atomic_write(args.json) as handle:
        json.dump(best, handle, indent=2)
    print(json.dumps(best, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
