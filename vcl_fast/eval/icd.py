"""Image copy detection (ICD) evaluation as DISC21 defines it, for the RTR extractor.

Metrics (the isc2021 definitions): predictions ``(query_id, reference_id, score)`` are ranked by decreasing
score, ties broken pessimistically (wrong matches first); precision_i = TP_i / i, recall_i = TP_i / #GT pairs;
micro-AP = sum_i (recall_i - recall_{i-1}) * precision_i; recall at precision 90 = the highest recall of a
ranking prefix whose precision is >= 0.9 (0 when none reaches it).

Retrieval scores a (query, reference) pair by the max cosine over all token combinations, found with faiss
inner-product search over every token feature of every reference.

Set layout (what :func:`build_icd_set` writes; DISC21's ``dev_queries``/``dev_ground_truth.csv`` names are read
too): ``queries/*.jpg``, ``references/*.jpg``, ``ground_truth.csv`` (``query_id,reference_id``; empty reference
for a query without a copy) and ``edits.csv`` (``query_id,edits`` with edits joined by ``;``).
"""
from __future__ import annotations

import csv
import dataclasses
import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from vcl_fast.atomic import atomic_write
from vcl_fast.data.augment import HELDOUT_EDITS, EditSpace, copy_edit
from vcl_fast.data.images import list_images, load_image


# ----- metrics -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ICDMetrics:
    """DISC21 metrics of one ranked prediction list. ``threshold_at_p90`` is None when P90 is never reached."""

    micro_ap: float
    recall_at_p90: float
    threshold_at_p90: float | None
    num_predictions: int
    num_ground_truth: int


def icd_metrics(
    predictions: Sequence[tuple[str, str, float]], ground_truth: Iterable[tuple[str, str]]
) -> ICDMetrics:
    """micro-AP and recall at precision 90 of ``predictions`` against the ``(query, reference)`` GT pairs."""
    truth = set(ground_truth)
    if not truth:
        raise ValueError("ground truth has no (query, reference) pairs")
    pairs = [(q, r) for q, r, _ in predictions]
    if len(set(pairs)) != len(pairs):
        raise ValueError("predictions contain the same (query, reference) pair more than once")
    if not predictions:
        return ICDMetrics(0.0, 0.0, None, 0, len(truth))
    scores = np.array([float(s) for _, _, s in predictions], dtype=np.float64)
    correct = np.array([p in truth for p in pairs], dtype=bool)
    order = np.lexsort((correct, -scores))  # score descending; within ties wrong matches first
    correct, scores = correct[order], scores[order]
    tp = np.cumsum(correct)
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / len(truth)
    micro_ap = float(np.sum(np.diff(recall, prepend=0.0) * precision))
    ok = precision >= 0.9
    if ok.any():
        best = int(np.argmax(np.where(ok, recall, -1.0)))
        return ICDMetrics(micro_ap, float(recall[best]), float(scores[best]), len(pairs), len(truth))
    return ICDMetrics(micro_ap, 0.0, None, len(pairs), len(truth))


# ----- retrieval ---------------------------------------------------------------------------------------
def _check_features(queries: np.ndarray, references: np.ndarray, k: int) -> None:
    if queries.ndim != 3 or references.ndim != 3 or queries.shape[2] != references.shape[2]:
        raise ValueError(f"features must be (N, T, D) with equal D, got {queries.shape} and {references.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def search_token_max(queries: np.ndarray, references: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(Q, T, D), (R, U, D) unit features -> ((Q, k') reference indices, (Q, k') scores), k' = min(k, R), best
    first, score = max over the T x U token cosines. Searching each query token's k'*U nearest reference
    tokens is exact: a reference in the top k' has its best token pair within that many neighbours."""
    import faiss

    _check_features(queries, references, k)
    num_q, t, d = queries.shape
    num_r, u, _ = references.shape
    k = min(k, num_r)
    if num_q == 0 or k == 0:
        return np.zeros((num_q, k), dtype=np.int64), np.zeros((num_q, k), dtype=np.float32)
    index = faiss.IndexFlatIP(d)
    index.add(np.ascontiguousarray(references.reshape(-1, d), dtype=np.float32))
    sims, found = index.search(np.ascontiguousarray(queries.reshape(-1, d), dtype=np.float32), min(k * u, num_r * u))
    sims, found = sims.reshape(num_q, -1), found.reshape(num_q, -1) // u
    out_idx = np.zeros((num_q, k), dtype=np.int64)
    out_sim = np.zeros((num_q, k), dtype=np.float32)
    for q in range(num_q):
        best: dict[int, float] = {}
        for r, s in zip(found[q], sims[q]):
            if r >= 0 and s > best.get(int(r), -np.inf):
                best[int(r)] = float(s)
        ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))[:k]
        out_idx[q, : len(ranked)] = [r for r, _ in ranked]
        out_sim[q, : len(ranked)] = [s for _, s in ranked]
    return out_idx, out_sim


def search_token_max_reference(queries: np.ndarray, references: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Dense numpy reference of :func:`search_token_max` (ties broken by lower reference index)."""
    _check_features(queries, references, k)
    k = min(k, references.shape[0])
    scores = np.einsum("qtd,rud->qrtu", queries, references).max(axis=(2, 3)) if queries.size else np.zeros(
        (queries.shape[0], references.shape[0]), dtype=np.float32)
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order.astype(np.int64), np.take_along_axis(scores, order, axis=1).astype(np.float32)


def pair_hit_rate(queries: np.ndarray, references: np.ndarray, pairs: Sequence[tuple[int, int]]) -> float:
    """Regional Token Hit Rate over (query index, reference index) pairs: share whose max token cosine used at
    least one regional feature (not CLS x CLS; CLS is the last token). NaN without pairs or regional tokens."""
    if not pairs or queries.shape[1] < 2:
        return float("nan")
    q_idx, r_idx = np.array(pairs).T
    sims = np.einsum("ptd,pud->ptu", queries[q_idx], references[r_idx]).reshape(len(pairs), -1)
    cls_cls = sims.shape[1] - 1
    return float(np.mean(sims.argmax(axis=1) != cls_cls))


# ----- evaluation sets ---------------------------------------------------------------------------------
@dataclass
class ICDSet:
    """Query and reference image files (id = file stem), GT pairs and each query's edits."""

    queries: list[Path]
    references: list[Path]
    ground_truth: list[tuple[str, str]]
    edits: dict[str, list[str]] = field(default_factory=dict)


def _first_existing(root: Path, names: Sequence[str]) -> Path:
    for name in names:
        if (root / name).exists():
            return root / name
    raise FileNotFoundError(f"{root} has none of {', '.join(names)} (expected an ICD set, see vcl_fast.eval.icd)")


def load_icd_set(directory: str | os.PathLike) -> ICDSet:
    """Read a set written by :func:`build_icd_set` or a DISC21-style folder."""
    root = Path(directory)
    if not root.is_dir():
        raise FileNotFoundError(f"ICD set directory {root} does not exist")
    queries = list_images(_first_existing(root, ["queries", "dev_queries"]))
    references = list_images(_first_existing(root, ["references"]))
    truth = []
    with open(_first_existing(root, ["ground_truth.csv", "dev_ground_truth.csv", "public_ground_truth.csv"])) as fh:
        for row in csv.DictReader(fh):
            if row.get("reference_id"):
                truth.append((row["query_id"], row["reference_id"]))
    edits = {}
    if (root / "edits.csv").is_file():
        with open(root / "edits.csv") as fh:
            edits = {row["query_id"]: [e for e in row["edits"].split(";") if e] for row in csv.DictReader(fh)}
    return ICDSet(queries, references, truth, edits)


def _save_jpeg(image, path: Path) -> None:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=95)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def build_icd_set(
    images: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    positives: int,
    negatives: int,
    distractors: int,
    queries_per_positive: int = 1,
    pip_fraction: float = 0.4,
    space: EditSpace = HELDOUT_EDITS,
    max_side: int = 384,
    seed: int = 0,
) -> ICDSet:
    """Make an ICD set from distinct images: ``positives`` images become a reference plus
    ``queries_per_positive`` edited queries each, ``distractors`` images become references no query copies, and
    ``negatives`` images become edited queries with no reference. ``pip_fraction`` of the positive queries are
    picture-in-picture edits (pasted onto a negative query's source image or onto a blurred copy of
    themselves); the others exclude PiP. Edits come from ``space`` (by default the held-out space, whose ranges
    are disjoint from training's)."""
    needed = positives + negatives + distractors
    if positives < 1 or negatives < 0 or distractors < 0 or queries_per_positive < 1:
        raise ValueError("positives and queries_per_positive must be >= 1, negatives and distractors >= 0")
    if len(images) < needed:
        raise ValueError(f"need {needed} distinct images (positives + negatives + distractors), got {len(images)}")
    if not 0.0 <= pip_fraction <= 1.0:
        raise ValueError(f"pip_fraction must be in [0, 1], got {pip_fraction}")
    out = Path(out)
    rng = np.random.default_rng(seed)
    chosen = [Path(images[i]) for i in rng.permutation(len(images))[:needed]]
    matched, negative_src, distractor_src = (
        chosen[:positives], chosen[positives : positives + negatives], chosen[positives + negatives :])
    no_pip = dataclasses.replace(space, probabilities={**space.probabilities, "pip": 0.0})
    with_pip = dataclasses.replace(space, probabilities={**space.probabilities, "pip": 1.0, "pad": 0.0})
    num_pip = int(round(pip_fraction * positives * queries_per_positive))

    references = [*matched, *distractor_src]
    for ri, path in enumerate(references):
        _save_jpeg(load_image(path, max_side), out / "references" / f"R{ri:06d}.jpg")
    sources = [(p, f"R{ri:06d}") for ri, p in enumerate(matched) for _ in range(queries_per_positive)]
    sources += [(p, "") for p in negative_src]
    truth, edits = [], {}
    for qi, (path, reference_id) in enumerate(sources):
        query_id = f"Q{qi:05d}"
        is_pip = bool(reference_id) and qi < num_pip
        background = None
        if is_pip and negative_src and rng.random() < 0.5:
            background = load_image(negative_src[int(rng.integers(len(negative_src)))], max_side)
        edited, edits[query_id] = copy_edit(load_image(path, max_side), rng, with_pip if is_pip else no_pip, background)
        _save_jpeg(edited, out / "queries" / f"{query_id}.jpg")
        truth.append((query_id, reference_id))
    with atomic_write(out / "edits.csv", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "edits"])
        writer.writerows([q, ";".join(e)] for q, e in edits.items())
    with atomic_write(out / "ground_truth.csv", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["query_id", "reference_id"])
        writer.writerows(truth)
    return load_icd_set(out)


# ----- evaluation --------------------------------------------------------------------------------------
def _metrics_dict(m: ICDMetrics) -> dict:
    return {"micro_ap": m.micro_ap, "recall_at_p90": m.recall_at_p90, "num_ground_truth": m.num_ground_truth}


def evaluate_features(
    icd: ICDSet, query_features: np.ndarray, reference_features: np.ndarray, top_k: int = 10
) -> dict:
    """Metrics of precomputed features (rows in ``icd.queries`` / ``icd.references`` order).

    Returns ``{"overall": {...}, "cls_only": {...} (k > 0), "per_edit": {edit: {...}}, "hit_rate": float,
    "hit_rate_pip": float}`` (hit rates over the ground-truth pairs; None for k = 0 or no pairs). A per-edit entry scores the queries carrying that edit together with every
    query that has no copy (so its precision still counts false alarms)."""
    query_ids = [p.stem for p in icd.queries]
    reference_ids = [p.stem for p in icd.references]
    found, scores = search_token_max(query_features, reference_features, top_k)
    predictions = [
        (query_ids[q], reference_ids[int(r)], float(s))
        for q in range(len(query_ids)) for r, s in zip(found[q], scores[q])
    ]
    result = {"overall": _metrics_dict(icd_metrics(predictions, icd.ground_truth))}
    if query_features.shape[1] > 1:
        cls_found, cls_scores = search_token_max(query_features[:, -1:], reference_features[:, -1:], top_k)
        cls_predictions = [
            (query_ids[q], reference_ids[int(r)], float(s))
            for q in range(len(query_ids)) for r, s in zip(cls_found[q], cls_scores[q])
        ]
        result["cls_only"] = _metrics_dict(icd_metrics(cls_predictions, icd.ground_truth))
    with_copy = {q for q, _ in icd.ground_truth}
    per_edit = {}
    for edit in sorted({e for applied in icd.edits.values() for e in applied}):
        keep = {q for q in with_copy if edit in icd.edits.get(q, [])}
        if not keep:
            continue
        subset = keep | (set(query_ids) - with_copy)
        per_edit[edit] = _metrics_dict(icd_metrics(
            [p for p in predictions if p[0] in subset], [g for g in icd.ground_truth if g[0] in keep]))
    result["per_edit"] = per_edit
    q_pos = {q: i for i, q in enumerate(query_ids)}
    r_pos = {r: i for i, r in enumerate(reference_ids)}
    pairs = [(q_pos[q], r_pos[r]) for q, r in icd.ground_truth if q in q_pos and r in r_pos]
    pip_pairs = [(q_pos[q], r_pos[r]) for q, r in icd.ground_truth if "pip" in icd.edits.get(q, []) and r in r_pos]
    for key, subset in (("hit_rate", pairs), ("hit_rate_pip", pip_pairs)):
        rate = pair_hit_rate(query_features, reference_features, subset)
        result[key] = None if np.isnan(rate) else rate
    return result


def evaluate_extractor(model, icd: ICDSet, top_k: int = 10, batch_size: int = 64, device: str = "cpu") -> dict:
    """Extract features of every query and reference with ``model`` and run :func:`evaluate_features`."""
    from vcl_fast.models.extract import extract_features

    def loaders(paths: list[Path]):
        return [lambda p=p: load_image(p, 2 * model.config.img_size) for p in paths]

    query_features = extract_features(model, loaders(icd.queries), batch_size, device)
    reference_features = extract_features(model, loaders(icd.references), batch_size, device)
    return evaluate_features(icd, query_features, reference_features, top_k)
