import itertools

import numpy as np
import pytest
from rtr_fixtures import write_photos

from vcl_fast.eval.icd import (
    build_icd_set,
    evaluate_features,
    icd_metrics,
    load_icd_set,
    pair_hit_rate,
    search_token_max,
    search_token_max_reference,
)


def test_metrics_on_hand_made_ranking():
    truth = [("q1", "r1"), ("q2", "r2"), ("q3", "r3"), ("q4", "r4")]
    predictions = [("q1", "r1", 0.9), ("q2", "r9", 0.8), ("q2", "r2", 0.7), ("q3", "r1", 0.6), ("q3", "r3", 0.5)]
    m = icd_metrics(predictions, truth)
    # ranked: T F T F T -> precision 1, 1/2, 2/3, 2/4, 3/5 at recall 1/4, -, 2/4, -, 3/4
    assert m.micro_ap == pytest.approx(0.25 * 1 + 0.25 * 2 / 3 + 0.25 * 3 / 5)
    assert m.recall_at_p90 == pytest.approx(0.25) and m.threshold_at_p90 == pytest.approx(0.9)
    assert (m.num_predictions, m.num_ground_truth) == (5, 4)


def test_metrics_perfect_and_never_precise():
    truth = [("a", "x"), ("b", "y")]
    perfect = icd_metrics([("a", "x", 0.5), ("b", "y", 0.4), ("a", "y", 0.1)], truth)
    assert perfect.micro_ap == pytest.approx(1.0) and perfect.recall_at_p90 == pytest.approx(1.0)
    bad = icd_metrics([("a", "y", 0.9), ("b", "y", 0.5)], truth)
    assert bad.micro_ap == pytest.approx(0.5 * 0.5) and bad.recall_at_p90 == 0.0 and bad.threshold_at_p90 is None
    assert icd_metrics([], truth).micro_ap == 0.0


def test_metrics_break_ties_pessimistically():
    truth = [("a", "x")]
    tied = icd_metrics([("a", "x", 0.5), ("a", "z", 0.5)], truth)
    assert tied.micro_ap == pytest.approx(0.5)  # wrong match ranked first within the tie


def test_metrics_reject_duplicates_and_empty_truth():
    with pytest.raises(ValueError, match="more than once"):
        icd_metrics([("a", "x", 0.5), ("a", "x", 0.4)], [("a", "x")])
    with pytest.raises(ValueError, match="no \\(query, reference\\) pairs"):
        icd_metrics([("a", "x", 0.5)], [])


def _unit(rng, *shape):
    x = rng.normal(size=shape).astype(np.float32)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


@pytest.mark.parametrize("q,r,t,u,k", list(itertools.product([0, 1, 5], [1, 2, 9], [1, 3], [1, 2], [1, 20])))
def test_search_token_max_matches_dense_reference(q, r, t, u, k):
    rng = np.random.default_rng(q * 100 + r * 10 + t + u + k)
    queries, references = _unit(rng, q, t, 8), _unit(rng, r, u, 8)
    found, scores = search_token_max(queries, references, k)
    ref_found, ref_scores = search_token_max_reference(queries, references, k)
    assert found.shape == ref_found.shape == (q, min(k, r))
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
    assert np.array_equal(found, ref_found)


def test_search_non_contiguous_float64_input():
    rng = np.random.default_rng(0)
    queries = _unit(rng, 4, 2, 6).astype(np.float64)[:, ::-1]
    references = _unit(rng, 7, 2, 6)[::2]
    found, scores = search_token_max(queries, references, 2)
    ref_found, ref_scores = search_token_max_reference(queries, references, 2)
    assert np.array_equal(found, ref_found)
    np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="equal D"):
        search_token_max(queries, _unit(rng, 3, 2, 5), 1)


def test_pair_hit_rate_on_hand_made_features():
    e = np.eye(3, dtype=np.float32)
    queries = np.stack([np.stack([e[0], e[1]]), np.stack([e[2], e[1]])])  # (region, cls)
    references = np.stack([np.stack([e[0], e[2]]), np.stack([e[0], e[1]])])
    assert pair_hit_rate(queries, references, [(0, 0)]) == 1.0  # region x region
    assert pair_hit_rate(queries, references, [(1, 1)]) == 0.0  # cls x cls
    assert pair_hit_rate(queries, references, [(0, 0), (1, 1)]) == 0.5
    assert np.isnan(pair_hit_rate(queries[:, -1:], references[:, -1:], [(0, 0)]))


def test_build_load_and_evaluate_icd_set(tmp_path):
    photos = write_photos(tmp_path / "photos", count=10, side=64)
    icd = build_icd_set(photos, tmp_path / "icd", positives=4, negatives=2, distractors=3,
                        queries_per_positive=2, pip_fraction=0.5, max_side=64, seed=1)
    assert len(icd.queries) == 10 and len(icd.references) == 7
    assert len(icd.ground_truth) == 8 and all(r.startswith("R") for _, r in icd.ground_truth)
    pip_queries = [q for q, e in icd.edits.items() if "pip" in e]
    assert pip_queries == ["Q00000", "Q00001", "Q00002", "Q00003"]
    assert all("pip" not in icd.edits[q] for q in ("Q00004", "Q00005", "Q00008", "Q00009"))
    again = build_icd_set(photos, tmp_path / "icd2", positives=4, negatives=2, distractors=3,
                          queries_per_positive=2, pip_fraction=0.5, max_side=64, seed=1)
    assert again.edits == icd.edits
    assert (tmp_path / "icd" / "queries" / "Q00000.jpg").read_bytes() == (
        tmp_path / "icd2" / "queries" / "Q00000.jpg").read_bytes()
    assert load_icd_set(tmp_path / "icd").ground_truth == icd.ground_truth

    # Oracle features: each query equals its reference's features (perfect), with 2 tokens.
    rng = np.random.default_rng(0)
    reference_features = _unit(rng, 7, 2, 8)
    ref_index = {p.stem: i for i, p in enumerate(icd.references)}
    truth = dict(icd.ground_truth)
    query_features = np.stack([
        reference_features[ref_index[truth[p.stem]]] if p.stem in truth else _unit(rng, 2, 8) * 0.1
        for p in icd.queries
    ])
    result = evaluate_features(icd, query_features, reference_features, top_k=3)
    assert result["overall"]["micro_ap"] == pytest.approx(1.0)
    assert result["per_edit"]["pip"]["num_ground_truth"] == 4
    assert result["per_edit"]["pip"]["micro_ap"] == pytest.approx(1.0)
    assert 0.0 <= result["hit_rate"] <= 1.0 and "cls_only" in result


def test_build_icd_set_errors(tmp_path):
    photos = write_photos(tmp_path / "photos", count=3, side=32)
    with pytest.raises(ValueError, match="need 5 distinct images"):
        build_icd_set(photos, tmp_path / "icd", positives=2, negatives=2, distractors=1)
    with pytest.raises(ValueError, match="pip_fraction"):
        build_icd_set(photos, tmp_path / "icd", positives=1, negatives=0, distractors=0, pip_fraction=2)
    with pytest.raises(FileNotFoundError, match="has none of"):
        load_icd_set(tmp_path / "photos")
