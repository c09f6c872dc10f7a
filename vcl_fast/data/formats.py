"""Dataset files: VCSL/VCDB labels and predictions (JSON), pair lists (CSV), VSC22 match lists (CSV).

- Labels JSON: ``{"qid-rid": [[q_start, r_start, q_end, r_end], ...]}``, seconds.
- Predictions JSON: ``{"qid-rid": [[q_start, r_start, q_end, r_end, score], ...]}``; boxes without the score
  (VCSL's own form) read with score 1, with a warning.
- Pair CSV: header ``query_id,reference_id`` (``ref_id`` accepted), one pair per line.
- VSC22 match CSV: columns ``query_id,ref_id,query_start,query_end,ref_start,ref_end,score`` in any order
  (``score`` optional for ground truth), one box per line.

Boxes come back as :data:`~vcl_fast.data.boxes.PairBoxes`: float64 ``(N, 4)`` (labels) or ``(N, 5)``
(predictions) arrays keyed by ``(query_id, reference_id)``. A JSON key is split at its single ``-``; ids that
contain ``-`` themselves need the pair list to resolve the key. Given a pair list, an entry for a pair not in
it is an error unless ``ignore_unlisted`` (e.g. a label file covering train/val/test with the test list).
Malformed files (bad JSON/CSV, wrong box arity, an end before its start, NaN/inf, unlisted or duplicate
pairs) raise ValueError naming the file and the entry. Exception: ground truth keeps reversed boxes with a
warning by default (``reversed_boxes="warn"``), because the real VCSL test labels hold one and the VCSL
metric keeps it (see :mod:`vcl_fast.data.boxes`). Writes are atomic.
"""
from __future__ import annotations

import csv
import io
import json
import os
import warnings
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.data.boxes import PairBoxes, box_problem

Pair = tuple[str, str]
VSC_COLUMNS = ("query_id", "ref_id", "query_start", "query_end", "ref_start", "ref_end", "score")


# ---------------------------------------------------------------------------------------------- pair CSV


def _text(path: str | os.PathLike) -> io.StringIO:
    """The file's text, UTF-8 with or without a byte-order mark (spreadsheets write one); ValueError naming the
    file when it is not UTF-8."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return io.StringIO(handle.read(), newline="")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save it as UTF-8") from None


def read_pairs(path: str | os.PathLike) -> list[Pair]:
    """Pair list ``[(query_id, reference_id), ...]`` in file order; duplicates are an error."""
    with _text(path) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: empty file, expected a header 'query_id,reference_id'")
        header = [name.strip() for name in header]
        ref_column = "reference_id" if "reference_id" in header else "ref_id"
        if "query_id" not in header or ref_column not in header:
            raise ValueError(f"{path}: header {','.join(header)!r} lacks 'query_id' and 'reference_id'; the first "
                             "line names the columns, as in VCSL's pair files: query_id,reference_id")
        q_col, r_col = header.index("query_id"), header.index(ref_column)
        pairs: list[Pair] = []
        seen: set[Pair] = set()
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header) or not row[q_col].strip() or not row[r_col].strip():
                raise ValueError(f"{path}: line {line}: expected {len(header)} non-empty fields, got {row!r}")
            pair = (row[q_col].strip(), row[r_col].strip())
            if pair in seen:
                raise ValueError(f"{path}: line {line}: pair {pair[0]}-{pair[1]} is listed twice")
            seen.add(pair)
            pairs.append(pair)
    return pairs


def write_pairs(path: str | os.PathLike, pairs: Iterable[Pair]) -> None:
    """Write a pair CSV with header ``query_id,reference_id`` (atomic)."""
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["query_id", "reference_id"])
        writer.writerows(pairs)


# ------------------------------------------------------------------------------------------ pair lookup


class _PairResolver:
    """Maps file entries to (query_id, reference_id), checking them against an optional pair list."""

    def __init__(self, path, pairs: Sequence[Pair] | None, ignore_unlisted: bool):
        self.path = path
        self.ignore_unlisted = ignore_unlisted
        self.listed: set[Pair] | None = None if pairs is None else set(pairs)
        self.by_key: dict[str, Pair] = {}
        for pair in pairs or ():
            key = f"{pair[0]}-{pair[1]}"
            if self.by_key.setdefault(key, pair) != pair:
                raise ValueError(f"pair list: pairs {self.by_key[key]} and {pair} share the key {key!r}")

    def from_key(self, key: str) -> Pair | None:
        """Pair of a JSON key ``"qid-rid"``; None when unlisted and ignored."""
        if self.listed is not None:
            pair = self.by_key.get(key)
            return pair if pair is not None else self._unlisted(key)
        parts = key.split("-")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            raise ValueError(
                f"{self.path}: entry {key!r}: cannot split into 'query_id-reference_id' (needs exactly one '-'); "
                "pass the pair list to resolve ids that contain '-'"
            )
        return parts[0], parts[1]

    def check(self, pair: Pair) -> Pair | None:
        """The pair itself if listed (or no list); None when unlisted and ignored."""
        if self.listed is None or pair in self.listed:
            return pair
        return self._unlisted(f"{pair[0]}-{pair[1]}")

    def _unlisted(self, key: str) -> Pair | None:
        """None (the entry is left out) when unlisted entries are ignored; else ValueError."""
        if self.ignore_unlisted:
            return None
        raise ValueError(f"{self.path}: entry {key!r} is not in the pair list")


def _validated(path, entries: dict[Pair, np.ndarray], reversed_boxes: str) -> PairBoxes:
    """Check all boxes at once; on a problem, name the entry it belongs to.

    reversed_boxes: "error" rejects boxes ending before they start; "warn" keeps them with one warning.
    """
    if reversed_boxes not in ("error", "warn"):
        raise ValueError(f"reversed_boxes must be 'error' or 'warn', got {reversed_boxes!r}")
    arrays = list(entries.values())
    if not arrays:
        return {}
    everything = np.concatenate(arrays)
    for allow_reversed in (True, False):
        if box_problem(everything, allow_reversed) is None:
            continue
        for pair, boxes in entries.items():
            problem = box_problem(boxes, allow_reversed)
            if problem is None:
                continue
            if allow_reversed or reversed_boxes == "error":
                raise ValueError(f"{path}: entry '{pair[0]}-{pair[1]}': {problem}")
            count = int(np.sum((everything[:, 2] < everything[:, 0]) | (everything[:, 3] < everything[:, 1])))
            warnings.warn(
                f"{path}: {count} ground-truth box(es) end before they start, first in entry '{pair[0]}-{pair[1]}': "
                f"{problem}; kept as the VCSL metric keeps them", stacklevel=4,
            )
            break
    return entries


# ------------------------------------------------------------------------------------------------- JSON


def _no_duplicate_keys(path):
    def hook(items):
        result = {}
        for key, value in items:
            if key in result:
                raise ValueError(f"{path}: entry {key!r} appears twice")
            result[key] = value
        return result

    return hook


def _read_json_boxes(path, columns: int, pairs, ignore_unlisted: bool, reversed_boxes: str) -> PairBoxes:
    names = "[q_start, r_start, q_end, r_end" + (", score]" if columns == 5 else "]")
    try:
        with _text(path) as handle:
            data = json.load(handle, object_pairs_hook=_no_duplicate_keys(path))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object {{\"qid-rid\": [{names}, ...]}}, got {type(data).__name__}")
    resolver = _PairResolver(path, pairs, ignore_unlisted)
    entries: dict[Pair, np.ndarray] = {}
    unscored = 0
    for key, value in data.items():
        pair = resolver.from_key(key)
        if pair is None:
            continue
        try:
            boxes = np.array(value, dtype=np.float64)
        except (TypeError, ValueError):
            boxes = None
        if boxes is not None and boxes.size == 0 and isinstance(value, list):
            boxes = boxes.reshape(0, columns)
        if columns == 5 and boxes is not None and boxes.ndim == 2 and boxes.shape[1] == 4:  # VCSL's unscored form
            unscored += len(boxes)
            boxes = np.concatenate([boxes, np.ones((len(boxes), 1))], axis=1)
        if boxes is None or boxes.ndim != 2 or boxes.shape[1] != columns:
            raise ValueError(f"{path}: entry {key!r}: expected a list of {names} boxes, got {str(value)[:120]}")
        entries[pair] = boxes
    if unscored:
        warnings.warn(f"{path}: {unscored} boxes have no score ([q_start, r_start, q_end, r_end], as VCSL writes "
                      "them): read with score 1, so a confidence threshold keeps them all and the VSC22 micro-AP "
                      "ranks them as ties", stacklevel=2)
    return _validated(path, entries, reversed_boxes)


def _write_json_boxes(path, boxes: PairBoxes, columns: int, allow_reversed: bool) -> None:
    payload = {}
    for (query_id, ref_id), array in boxes.items():
        array = np.asarray(array, dtype=np.float64).reshape(-1, columns)
        problem = box_problem(array, allow_reversed)
        if problem is not None:
            raise ValueError(f"{path}: entry '{query_id}-{ref_id}': {problem}")
        payload[f"{query_id}-{ref_id}"] = array.tolist()
    with atomic_write(path) as handle:
        json.dump(payload, handle)


# ------------------------------------------------------------------------------------------- VSC22 CSV


def _read_vsc_csv(path, columns: int, pairs, ignore_unlisted: bool, reversed_boxes: str) -> PairBoxes:
    required = VSC_COLUMNS if columns == 5 else VSC_COLUMNS[:-1]
    resolver = _PairResolver(path, pairs, ignore_unlisted)
    grouped: dict[Pair, list[list[float]]] = {}
    with _text(path) as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        missing = [name for name in required if name not in header]
        if missing:
            raise ValueError(f"{path}: header {','.join(header)!r} lacks the VSC22 columns {', '.join(missing)}")
        index = [header.index(name) for name in required]
        for line, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{path}: line {line}: expected {len(header)} fields, got {len(row)}")
            pair = resolver.check((row[index[0]].strip(), row[index[1]].strip()))
            if pair is None:
                continue
            try:
                q_s, q_e, r_s, r_e, *score = (float(row[i]) for i in index[2:])
            except ValueError:
                raise ValueError(f"{path}: line {line}: non-numeric time or score in {row!r}") from None
            grouped.setdefault(pair, []).append([q_s, r_s, q_e, r_e, *score])
    entries = {pair: np.asarray(rows, dtype=np.float64) for pair, rows in grouped.items()}
    return _validated(path, entries, reversed_boxes)


def write_vsc_matches(path: str | os.PathLike, predictions: PairBoxes) -> None:
    """Write ``(N, 5)`` prediction boxes as a VSC22 match CSV (atomic)."""
    with atomic_write(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(VSC_COLUMNS)
        for (query_id, ref_id), array in predictions.items():
            array = np.asarray(array, dtype=np.float64).reshape(-1, 5)
            problem = box_problem(array)
            if problem is not None:
                raise ValueError(f"{path}: entry '{query_id}-{ref_id}': {problem}")
            for q_s, r_s, q_e, r_e, score in array.tolist():
                writer.writerow([query_id, ref_id, repr(q_s), repr(q_e), repr(r_s), repr(r_e), repr(score)])


# ------------------------------------------------------------------------------------------- public API


def _read_boxes(path, columns: int, pairs, ignore_unlisted: bool, reversed_boxes: str) -> PairBoxes:
    suffix = Path(path).suffix.lower()
    if suffix == ".json":
        return _read_json_boxes(path, columns, pairs, ignore_unlisted, reversed_boxes)
    if suffix == ".csv":
        return _read_vsc_csv(path, columns, pairs, ignore_unlisted, reversed_boxes)
    raise ValueError(f"{path}: unknown box file type {suffix!r}; expected .json (VCSL) or .csv (VSC22)")


def read_labels(
    path: str | os.PathLike,
    pairs: Sequence[Pair] | None = None,
    ignore_unlisted: bool = False,
    reversed_boxes: str = "warn",
) -> PairBoxes:
    """Ground truth ``{(qid, rid): (M, 4) float64}`` from VCSL JSON or VSC22 CSV (chosen by suffix).

    reversed_boxes: "warn" keeps boxes that end before they start, with one warning (the real VCSL test
    labels hold one, see :mod:`vcl_fast.data.boxes`); "error" rejects them.
    """
    return _read_boxes(path, 4, pairs, ignore_unlisted, reversed_boxes)


def read_predictions(
    path: str | os.PathLike, pairs: Sequence[Pair] | None = None, ignore_unlisted: bool = False
) -> PairBoxes:
    """Predictions ``{(qid, rid): (N, 5) float64}`` (last column score) from JSON or VSC22 CSV."""
    return _read_boxes(path, 5, pairs, ignore_unlisted, "error")


def write_labels(path: str | os.PathLike, labels: PairBoxes) -> None:
    """Write ``(M, 4)`` ground-truth boxes as VCSL label JSON (atomic)."""
    _write_json_boxes(path, labels, 4, allow_reversed=True)


def write_predictions(path: str | os.PathLike, predictions: PairBoxes) -> None:
    """Write ``(N, 5)`` prediction boxes as prediction JSON (atomic)."""
    _write_json_boxes(path, predictions, 5, allow_reversed=False)
