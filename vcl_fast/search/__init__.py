"""Search a reference library for copies of query videos, on one machine or on a Ray cluster.

Stages (:mod:`vcl_fast.search.stages`): ``build_index`` stores a library's features in shards and builds a
faiss index over every frame token (:mod:`~vcl_fast.search.library`, :mod:`~vcl_fast.search.frame_index`);
``search_queries`` finds candidate references by frame-kNN voting (:mod:`~vcl_fast.search.retrieval`) and
localizes the copies in all candidates in one batch (:mod:`~vcl_fast.search.localize`); ``localize_pairs``
localizes listed pairs for evaluation. Videos are embedded and copies detected with :class:`vcl_fast.Localizer`
(:class:`LocalizerEmbedder`, :class:`LocalizerPairs`). Pass ``ray=RayOptions(...)`` to run any stage on Ray
actors (:mod:`~vcl_fast.search.distributed`, docs/distributed.md). faiss and Ray are imported only when used.
"""
from vcl_fast.search.distributed import RayOptions, RayWorkers
from vcl_fast.search.embed import (
    FeatureFileLoader, LocalizerEmbedder, LocalizerSpec, embedder_from_description, list_feature_files, list_videos,
)
from vcl_fast.search.frame_index import PRESETS, IndexConfig, index_config
from vcl_fast.search.library import Manifest, ReferenceLibrary, VideoSource, read_manifest
from vcl_fast.search.localize import ClassicalAligner, LocalizerPairs, MapLocalizer
from vcl_fast.search.searcher import Candidate, Match, Searcher, SearchResult, SearchSettings, pair_boxes
from vcl_fast.search.stages import build_index, embed_queries, localize_pairs, search_queries
from vcl_fast.search.workers import LocalWorkers, Worker

__all__ = [
    "PRESETS", "Candidate", "ClassicalAligner", "FeatureFileLoader", "IndexConfig", "LocalWorkers",
    "LocalizerEmbedder", "LocalizerPairs", "LocalizerSpec", "Manifest", "MapLocalizer", "Match", "RayOptions",
    "RayWorkers", "ReferenceLibrary", "SearchResult", "SearchSettings", "Searcher", "VideoSource", "Worker",
    "build_index", "embed_queries", "embedder_from_description", "index_config", "list_feature_files",
    "list_videos", "localize_pairs", "pair_boxes", "read_manifest", "search_queries",
]
