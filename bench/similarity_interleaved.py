"""Best-of-N wall-clock times of the similarity map at Q = R = 600 (T = 2, D = 256), float32 and int16 kernels
and the torch reference called in turn, so that every implementation sees the same background load.

Run: python bench/similarity_interleaved.py [--rounds 60] [--size 600]
"""
import argparse
import time

import numpy as np
import torch

from vcl_fast.ops import similarity_map, similarity_map_torch_reference


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--size", type=int, default=600)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    query, reference = (rng.standard_normal((args.size, 2, 256), dtype=np.float32) for _ in range(2))
    tq, tr = torch.from_numpy(query), torch.from_numpy(reference)
    calls = {
        "fp32": lambda: similarity_map(query, reference),
        "int16": lambda: similarity_map(query, reference, precision="int16"),
        "torch_reference": lambda: similarity_map_torch_reference(tq, tr),
    }
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(args.rounds):
        for name, call in calls.items():
            start = time.perf_counter()
            call()
            best[name] = min(best[name], time.perf_counter() - start)
    print(" | ".join(f"{name} {seconds * 1e3:.2f} ms" for name, seconds in best.items()))
    print(f"int16 / fp32 x{best['fp32'] / best['int16']:.2f}, int16 / torch reference "
          f"x{best['torch_reference'] / best['int16']:.2f}, fp32 / torch reference "
          f"x{best['torch_reference'] / best['fp32']:.2f}")


if __name__ == "__main__":
    main()
