"""``vcl-fast align``: run a classical localizer on a similarity map saved with ``np.save``."""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.eval.localizers import LOCALIZERS, get_localizer, localizer_params


def load_sim_map(path: str) -> np.ndarray:
    """The array in a ``.npy`` file (no pickles); ValueError/OSError naming the file otherwise."""
    file = Path(path)
    if not file.is_file():
        raise OSError(f"{path}: no such file")
    if file.suffix != ".npy":
        raise ValueError(f"{path}: not a .npy file (save the (Q, R) map with numpy.save)")
    try:
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError):  # numpy reads any other file as a pickle and says so: misleading
        raise ValueError(f"{path}: not a .npy array file (save the (Q, R) map with numpy.save)") from None


def format_boxes(boxes: np.ndarray, decimals: int = 0) -> str:
    """A text table of ``(N, 5)`` boxes ``[q_s, r_s, q_e, r_e, score]`` (coordinates with ``decimals``)."""
    lines = [f"{'q_start':>9} {'r_start':>9} {'q_end':>9} {'r_end':>9} {'score':>8}"]
    lines += [" ".join(f"{v:9.{decimals}f}" for v in box[:4]) + f" {box[4]:8.4f}" for box in boxes]
    return "\n".join(lines)


def report_boxes(boxes: np.ndarray, summary: str, json_path: str | None, decimals: int = 0) -> None:
    """Print the box table (when there are boxes) and ``summary``; write the boxes as a JSON list of
    5-number lists to ``json_path`` when given (atomic)."""
    if len(boxes):
        print(format_boxes(boxes, decimals))
    print(summary)
    if json_path:
        with atomic_write(json_path) as handle:
            json.dump(np.asarray(boxes).tolist(), handle)
            handle.write("\n")


def _cmd_align(args: argparse.Namespace) -> int:
    params = localizer_params(args.method, args.param)
    sim = load_sim_map(args.sim)
    try:
        boxes = get_localizer(args.method).run(sim, params)
    except (ValueError, TypeError) as exc:
        raise type(exc)(f"{args.sim}: {exc}") from None
    summary = f"{len(boxes) or 'no'} box{'es' if len(boxes) != 1 else ''} ({args.method}; frames, exclusive ends)"
    report_boxes(boxes, summary, args.json)
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "align",
        help="find copied segments in a similarity map with a classical localizer (HV, TN, DP, DTW)",
        description="Boxes [q_start, r_start, q_end, r_end, score] in frames (exclusive ends) of a (Q, R) "
        "query x reference similarity map saved with numpy.save.",
        epilog="parameters and their VCSL-tuned defaults:\n" + "\n".join(
            f"  {name}: " + " ".join(f"{key}={value}" for key, value in dataclasses.asdict(loc.preset).items())
            for name, loc in LOCALIZERS.items()
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("sim", metavar="SIM.npy", help="(Q, R) float similarity map")
    p.add_argument("--method", default="tn", choices=list(LOCALIZERS), help="localizer (default: tn)")
    p.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE",
        help="override a parameter of the method's VCSL-tuned preset (repeatable), e.g. --param min_sim=0.3",
    )
    p.add_argument("--json", metavar="OUT.json", help="also write the boxes as a JSON list of 5-number lists")
    p.set_defaults(func=_cmd_align)
