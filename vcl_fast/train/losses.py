"""Contrastive objective of the RTR extractor: NT-Xent over 2N views with CLS or max-over-token similarity.

Feature tensors are ``(N, T, D)`` unit vectors, T = k+1 tokens with CLS at row ``T-1`` (see
:mod:`vcl_fast.models.rtr`). Views are ordered ``[a_1..a_N, b_1..b_N]``: view ``i`` and ``i+N`` are positives.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def cls_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N, T, D), (M, T, D) -> (N, M) cosine similarity of the CLS rows (last token)."""
    return a[:, -1] @ b[:, -1].T


def token_max_similarity(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, T, D), (M, U, D) -> ((N, M) max over the T x U token cosines, (N, M) int64 argmax ``t * U + u``)."""
    sims = torch.einsum("ntd,mud->nmtu", a, b)
    best, index = sims.flatten(2).max(dim=2)
    return best, index


def token_max_similarity_reference(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Loop reference of :func:`token_max_similarity` (first maximum wins on ties)."""
    n, t = a.shape[:2]
    m, u = b.shape[:2]
    best = torch.empty(n, m, dtype=a.dtype)
    index = torch.empty(n, m, dtype=torch.int64)
    for i in range(n):
        for j in range(m):
            values = [float(a[i, x] @ b[j, y]) for x in range(t) for y in range(u)]
            index[i, j] = max(range(len(values)), key=lambda v: (values[v], -v))
            best[i, j] = values[index[i, j]]
    return best, index


def nt_xent(similarity: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent (SimCLR) over a (2N, 2N) similarity matrix of views ``[a; b]``: mean over the 2N anchors of
    ``-log(exp(s_ip / tau) / sum_{k != i} exp(s_ik / tau))`` with positive ``p = i +- N``."""
    two_n = similarity.shape[0]
    if similarity.ndim != 2 or similarity.shape[1] != two_n or two_n % 2 or two_n == 0:
        raise ValueError(f"similarity must be (2N, 2N) with N >= 1, got {tuple(similarity.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    n = two_n // 2
    logits = similarity.float() / temperature
    eye = torch.eye(two_n, dtype=torch.bool, device=similarity.device)
    logits = logits.masked_fill(eye, float("-inf"))
    positives = torch.arange(two_n, device=similarity.device).roll(n)
    return F.cross_entropy(logits, positives)


def nt_xent_reference(similarity: torch.Tensor, temperature: float) -> torch.Tensor:
    """Plain loop over the 2N anchors, as written in the paper (eq. 5)."""
    two_n = similarity.shape[0]
    n = two_n // 2
    total = 0.0
    for i in range(two_n):
        p = (i + n) % two_n
        denominator = sum(math.exp(float(similarity[i, k]) / temperature) for k in range(two_n) if k != i)
        total += -math.log(math.exp(float(similarity[i, p]) / temperature) / denominator)
    return torch.tensor(total / two_n)


def view_similarity(features: torch.Tensor, use_regional: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(2N, T, D) view features -> ((2N, 2N) similarity, (2N, 2N) argmax combination or None).

    ``use_regional=False`` (stage 1, or k = 0): CLS cosine. ``True`` (stage 2): max over all T x T token pairs.
    """
    if use_regional and features.shape[1] > 1:
        return token_max_similarity(features, features)
    return cls_similarity(features, features), None


def regional_hit_rate(combination: torch.Tensor, num_tokens: int) -> float:
    """Share of pairs whose best combination ``t * T + u`` (from :func:`token_max_similarity`) used at least
    one regional feature, i.e. was not (CLS, CLS). CLS is token ``T-1``. NaN for no pairs or T = 1."""
    if combination.numel() == 0 or num_tokens < 2:
        return float("nan")
    cls_cls = (num_tokens - 1) * num_tokens + (num_tokens - 1)
    return float((combination != cls_cls).float().mean())


def positive_pair_combinations(features: torch.Tensor) -> torch.Tensor:
    """(2N, T, D) views -> (N,) best token combination of each positive pair (i, i+N)."""
    n = features.shape[0] // 2
    sims = torch.einsum("ntd,nud->ntu", features[:n], features[n:])
    return sims.flatten(1).argmax(dim=1)
