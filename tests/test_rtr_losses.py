import itertools

import pytest
import torch
import torch.nn.functional as F

from vcl_fast.train.losses import (
    cls_similarity,
    nt_xent,
    nt_xent_reference,
    positive_pair_combinations,
    regional_hit_rate,
    token_max_similarity,
    token_max_similarity_reference,
    view_similarity,
)


@pytest.mark.parametrize("n,tau,dtype", list(itertools.product([1, 2, 7], [0.05, 0.1, 1.0], [torch.float32, torch.bfloat16])))
def test_nt_xent_matches_reference(n, tau, dtype):
    torch.manual_seed(n)
    feats = F.normalize(torch.randn(2 * n, 8), dim=1)
    sim = (feats @ feats.T).to(dtype)
    expected = nt_xent_reference(sim.float(), tau)
    torch.testing.assert_close(nt_xent(sim, tau), expected, rtol=1e-4, atol=1e-4)


def test_nt_xent_rejects_bad_input():
    with pytest.raises(ValueError, match="2N, 2N"):
        nt_xent(torch.zeros(3, 3), 0.1)
    with pytest.raises(ValueError, match="temperature"):
        nt_xent(torch.zeros(2, 2), 0.0)


@pytest.mark.parametrize("n,m,t,u", list(itertools.product([0, 1, 4], [1, 3], [1, 2, 4], [1, 3])))
def test_token_max_similarity_matches_reference(n, m, t, u):
    torch.manual_seed(n + m + t + u)
    a = F.normalize(torch.randn(n, t, 6), dim=-1)
    b = F.normalize(torch.randn(u, m, 6), dim=-1).transpose(0, 1)  # non-contiguous (M, U, D)
    best, index = token_max_similarity(a, b)
    ref_best, ref_index = token_max_similarity_reference(a, b)
    torch.testing.assert_close(best, ref_best)
    assert torch.equal(index, ref_index)


def test_view_similarity_cls_and_max():
    torch.manual_seed(0)
    feats = F.normalize(torch.randn(6, 3, 4), dim=-1)
    cls, none = view_similarity(feats, use_regional=False)
    assert none is None
    torch.testing.assert_close(cls, feats[:, -1] @ feats[:, -1].T)
    torch.testing.assert_close(cls, cls_similarity(feats, feats))
    full, combo = view_similarity(feats, use_regional=True)
    assert (full >= cls - 1e-6).all() and combo.shape == (6, 6)
    cls_only, _ = view_similarity(feats[:, -1:], use_regional=True)
    torch.testing.assert_close(cls_only, cls)


def test_hit_rate_on_hand_made_features():
    e = torch.eye(4)
    # T = 2 tokens (region, cls). Pair 0: the regions match -> hit. Pair 1: the CLS tokens match -> no hit.
    # Pair 2: region of a matches cls of b -> hit.
    a = torch.stack([torch.stack([e[0], e[1]]), torch.stack([e[0], e[2]]), torch.stack([e[3], e[1]])])
    b = torch.stack([torch.stack([e[0], e[2]]), torch.stack([e[1], e[2]]), torch.stack([e[2], e[3]])])
    combos = positive_pair_combinations(torch.cat([a, b]))
    assert combos.tolist() == [0, 3, 1]
    assert regional_hit_rate(combos, 2) == pytest.approx(2 / 3)
    assert regional_hit_rate(torch.tensor([3, 3]), 2) == 0.0
    assert regional_hit_rate(torch.tensor([8]), 3) == 0.0 and regional_hit_rate(torch.tensor([7]), 3) == 1.0
    assert regional_hit_rate(torch.tensor([0]), 1) != regional_hit_rate(torch.tensor([0]), 1)  # NaN without regions
