"""Candidate reference videos of a query by voting over the frame-level nearest neighbours.

Every token of every query frame asks the frame index for its ``k`` nearest library vectors (inner product
of unit vectors = cosine similarity). Voting: query frame ``i`` gives library video ``v`` the HIGHEST
similarity among all neighbours of all of frame ``i``'s tokens that lie in ``v`` (neighbours at or below
``min_similarity`` do not vote; -1 ids, slots faiss could not fill, never vote). A video's ``votes`` is the
sum of those per-frame similarities over the query frames, so it grows with the number of query frames
whose neighbours hit the video, weighted by how similar they are, and one query frame adds at most 1
to one video however many of its frames look alike. ``frames`` counts the query frames that voted for it.
Candidates are ranked by votes (descending), ties by library order.
"""
from __future__ import annotations

import numpy as np


def vote(similarities: np.ndarray, ids: np.ndarray, query_tokens: int, frame_offsets: np.ndarray,
         library_tokens: int, min_similarity: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank library videos by votes.

    similarities, ids: ``(Q * query_tokens, k)`` kNN results (row ``r`` belongs to query frame
    ``r // query_tokens``; ids are library vector ids, frame ``id // library_tokens``). frame_offsets:
    ``(V + 1,)`` library frame offsets of the videos. Returns ``(video_indices, votes, frames)`` of the
    videos with at least one vote, ranked: int64, float64, int64 arrays.
    """
    similarities, ids = np.asarray(similarities), np.asarray(ids)
    if similarities.shape != ids.shape or similarities.ndim != 2:
        raise ValueError(f"similarities and ids must be (N, k) arrays of one shape, got {similarities.shape} "
                         f"and {ids.shape}")
    num_videos = len(frame_offsets) - 1
    query_frames = np.repeat(np.arange(len(ids)) // query_tokens, ids.shape[1])
    sims, flat_ids = similarities.ravel().astype(np.float64), ids.ravel()
    voting = (flat_ids >= 0) & (sims > min_similarity)
    sims, query_frames = sims[voting], query_frames[voting]
    videos = np.searchsorted(frame_offsets, flat_ids[voting] // library_tokens, side="right") - 1
    keys = query_frames * num_videos + videos
    order = np.lexsort((-sims, keys))
    keys, sims, videos = keys[order], sims[order], videos[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    votes = np.bincount(videos[first], weights=sims[first], minlength=num_videos)
    frames = np.bincount(videos[first], minlength=num_videos)
    hit = np.flatnonzero(frames)
    ranked = hit[np.argsort(-votes[hit], kind="stable")]
    return ranked.astype(np.int64), votes[ranked], frames[ranked].astype(np.int64)


def vote_reference(similarities: np.ndarray, ids: np.ndarray, query_tokens: int, frame_offsets: np.ndarray,
                   library_tokens: int, min_similarity: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-Python definition of :func:`vote` (loops over query frames and neighbours)."""
    num_videos = len(frame_offsets) - 1
    best: dict[tuple[int, int], float] = {}
    for row in range(len(ids)):
        for sim, vector in zip(similarities[row].tolist(), ids[row].tolist()):
            if vector < 0 or not sim > min_similarity:
                continue
            frame = vector // library_tokens
            video = next(v for v in range(num_videos) if frame_offsets[v] <= frame < frame_offsets[v + 1])
            key = (row // query_tokens, video)
            best[key] = max(best.get(key, -np.inf), sim)
    votes, frames = [0.0] * num_videos, [0] * num_videos
    for (_, video), sim in sorted(best.items()):
        votes[video] += sim
        frames[video] += 1
    ranked = sorted((v for v in range(num_videos) if frames[v]), key=lambda v: (-votes[v], v))
    return (np.array(ranked, dtype=np.int64), np.array([votes[v] for v in ranked], dtype=np.float64),
            np.array([frames[v] for v in ranked], dtype=np.int64))
