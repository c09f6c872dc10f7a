"""``vcl-fast eval``: VCSL/VCDB segment and video metrics plus VSC22 segment micro-AP of a prediction file."""
from __future__ import annotations

import argparse
import json
import warnings

from vcl_fast.atomic import atomic_write, check_output_file

# Keys every --json report holds (fractions in [0, 1] except num_pairs).
REPORT_KEYS = (
    "segment_recall", "segment_precision", "segment_f1", "video_recall", "video_precision", "video_f1",
    "frr", "far", "vsc_micro_ap", "num_pairs",
)


def evaluate_files(
    labels_path: str, pairs_path: str, pred_path: str, conf: float = 0.1,
    integer_boxes: bool = False, ignore_unlisted: bool = False,
) -> tuple[dict, list[str]]:
    """Evaluate a prediction file (JSON or VSC22 CSV); returns the report dict and notes for the user."""
    from vcl_fast.data.formats import read_labels, read_pairs, read_predictions
    from vcl_fast.eval.vcsl_metrics import evaluate_vcsl
    from vcl_fast.eval.vsc_metrics import segment_micro_ap

    pairs = read_pairs(pairs_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        labels = read_labels(labels_path, pairs, ignore_unlisted=ignore_unlisted)
        predictions = read_predictions(pred_path, pairs, ignore_unlisted=ignore_unlisted)
    notes = [str(w.message) for w in caught]
    metrics = evaluate_vcsl(labels, predictions, pairs, conf=conf, integer_boxes=integer_boxes)
    report = metrics.to_dict()
    report["vsc_micro_ap"] = segment_micro_ap(labels, predictions)
    report.update(conf=conf, integer_boxes=integer_boxes, labels=str(labels_path), pairs=str(pairs_path),
                  predictions=str(pred_path))
    if metrics.all_pairs_positive:
        notes.append("all pairs are positive (VCDB-style): video precision is 1 by construction and FAR is "
                     "reported as 0 (no negative pairs)")
    report["notes"] = notes
    return report, notes


def format_table(report: dict) -> list[tuple[str, str]]:
    """Rows (name, value) of the printed table."""
    pct = lambda key: f"{100 * report[key]:.2f}%"  # noqa: E731
    return [
        ("segment recall / precision / F1", f"{pct('segment_recall')} / {pct('segment_precision')} / {pct('segment_f1')}"),
        ("video recall / precision / F1", f"{pct('video_recall')} / {pct('video_precision')} / {pct('video_f1')}"),
        ("FRR / FAR", f"{pct('frr')} ({report['false_rejections']}) / {pct('far')} ({report['false_alarms']})"),
        ("VSC22 segment micro-AP", pct("vsc_micro_ap")),
        ("pairs (positive / negative)", f"{report['num_pairs']} ({report['num_positive']} / {report['num_negative']})"),
        ("boxes per pair (predicted / ground truth)", f"{report['predicted_boxes'] / report['num_pairs']:.2f} / "
                                                      f"{report['ground_truth_boxes'] / report['num_pairs']:.2f}"),
    ]


def _print_table(rows: list[tuple[str, str]]) -> None:
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        return
    table = Table(title="vcl-fast eval")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


def _cmd_eval(args: argparse.Namespace) -> int:
    if args.json:
        check_output_file(args.json)
    report, notes = evaluate_files(args.labels, args.pairs, args.pred, args.conf, args.integer_boxes, args.ignore_unlisted)
    if args.json:
        with atomic_write(args.json) as handle:
            json.dump(report, handle, indent=2)
    _print_table(format_table(report))
    for note in notes:
        print(f"note: {note}")
    return 0


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="VCSL/VCDB segment + video metrics and VSC22 micro-AP of predictions",
        description="Evaluate predictions against labels over a pair list (VCSL protocol; pairs without labels "
                    "are negatives). VSC22 micro-AP ranks all predictions of the listed pairs (no threshold).",
    )
    p.add_argument("--labels", required=True, help="label JSON {\"qid-rid\": [[q_s, r_s, q_e, r_e], ...]} or VSC22 CSV")
    p.add_argument("--pairs", required=True, help="pair CSV with header query_id,reference_id")
    p.add_argument("--pred", required=True, help="prediction JSON (boxes with score) or VSC22 match CSV")
    p.add_argument("--conf", type=float, default=0.1,
                   help="keep predictions with score > CONF for the VCSL metrics (default 0.1; --conf=-inf keeps all)")
    p.add_argument("--integer-boxes", action="store_true",
                   help="truncate prediction boxes to integers as the TransVCL/RTR evaluation script does")
    p.add_argument("--ignore-unlisted", action="store_true",
                   help="skip label/prediction entries for pairs not in the pair list instead of failing")
    p.add_argument("--json", metavar="OUT", help="also write the metrics to this JSON file")
    p.set_defaults(func=_cmd_eval)
