"""Extractor throughput and whole-pipeline pairs per second, per runtime backend (and method).

Random ``tiny_cpu`` weights (speed does not depend on them), exported once for ONNX Runtime; the inputs are
those of ``vcl-fast bench --suite extract|localize`` (vcl_fast.bench_commands). Run from the repository root:

    nice -n 10 python -m pytest bench/bench_localize.py --benchmark-enable --benchmark-columns=min,median,rounds
"""
import itertools
import os

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from vcl_fast.bench_commands import METHODS, extract_cases, localize_cases, model_sources  # noqa: E402

BACKENDS = ("onnxruntime", "torch")
THREADS = int(os.environ.get("VCL_FAST_BENCH_THREADS", "1"))


@pytest.fixture(scope="module")
def sources(tmp_path_factory):
    import torch

    torch.set_num_threads(THREADS)
    return model_sources(None, "tiny_cpu", tmp_path_factory.mktemp("tiny_cpu_model"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_extract(benchmark, sources, backend):
    (case,) = extract_cases({backend: sources[backend]}, THREADS)
    benchmark.extra_info["frames_per_call"] = case.work
    benchmark(case.impls[backend])


@pytest.mark.parametrize("backend, method", list(itertools.product(BACKENDS, METHODS)))
def test_localize_pair(benchmark, sources, backend, method):
    (case,) = [c for c in localize_cases({backend: sources[backend]}, THREADS) if c.name.split()[1] == method]
    benchmark(case.impls[backend])


@pytest.mark.parametrize("extent_similarity, margin", [(-1.0, 0.0), (0.75, 0.0), (-1.0, 0.5)])
def test_postprocess(benchmark, extent_similarity, margin):
    """The cosine floor alone, with the extent fit, and with box margins, on a 600 x 600 map holding 50
    detections."""
    import numpy as np

    from vcl_fast.detect.localizer import DetectionSettings, postprocess

    rng = np.random.default_rng(0)
    sim = rng.uniform(0.2, 0.95, (600, 600)).astype(np.float32)
    q0, r0 = rng.uniform(0, 550, 50), rng.uniform(0, 550, 50)
    sizes = rng.uniform(5, 50, (2, 50))
    boxes = np.stack([q0, r0, q0 + sizes[0], r0 + sizes[1], rng.uniform(0.1, 1, 50)], 1).astype(np.float32)
    settings = DetectionSettings(input_size=256, min_similarity=0.9, extent_similarity=extent_similarity,
                                 query_margin=margin, reference_margin=-margin)
    benchmark(postprocess, boxes, sim, settings)


@pytest.mark.parametrize("map_kind", ["whole", "lazy"])
def test_long_pair_detection(benchmark, map_kind):
    """The embedded default detector on a pair of 2-hour feature sequences (7,200 x 7,200 frames at 1 fps, 36
    tiles): the whole map computed first, or a LazySimilarityMap read tile by tile. ``extra_info`` holds the
    peak traced memory (numpy allocations, MiB) of one call."""
    import tracemalloc

    import numpy as np

    from vcl_fast.api import Localizer
    from vcl_fast.detect.localizer import localize_maps
    from vcl_fast.ops import LazySimilarityMap, similarity_map

    loc = Localizer(threads=THREADS)
    rng = np.random.default_rng(0)
    query = rng.standard_normal((7200, 2, 256)).astype(np.float32)
    reference = rng.standard_normal((7200, 2, 256)).astype(np.float32)
    reference[3000:3600] = query[100:700]

    def run():
        sim = LazySimilarityMap(query, reference) if map_kind == "lazy" else similarity_map(query, reference)
        return localize_maps([sim], loc.detector.run, loc.params)

    tracemalloc.start()
    run()
    benchmark.extra_info["peak_traced_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    benchmark.pedantic(run, rounds=3, iterations=1)


@pytest.mark.parametrize("members", [1, 2, 3])
def test_detector_ensemble(benchmark, tmp_path_factory, members):
    """The detector pass (render, ONNX Runtime, decode, NMS) over 16 maps of 40 x 40 frames (one query against 16
    references of ~40 s at 1 fps) for one random ``tiny_cpu`` YOLOX and for ensembles of 2 and 3
    (``YOLOXEnsemble``, exported as one graph)."""
    import numpy as np
    import torch

    from vcl_fast.detect.localizer import DetectionSettings, localize_maps
    from vcl_fast.export.onnx import export_onnx
    from vcl_fast.models.yolox import YOLOXEnsemble, build_detector
    from vcl_fast.runtime import ort_backend

    torch.set_num_threads(THREADS)
    models = []
    for seed in range(members):
        torch.manual_seed(seed)
        models.append(build_detector("tiny_cpu").eval())
    directory = tmp_path_factory.mktemp(f"ensemble_{members}")
    export_onnx(directory, detector=models[0] if members == 1 else YOLOXEnsemble(models))
    detector = ort_backend.load_detector(directory, "cpu", THREADS)
    maps = list(np.random.default_rng(0).uniform(-0.2, 1.0, (16, 40, 40)).astype(np.float32))
    settings = DetectionSettings(input_size=detector.spec.input_size)
    benchmark(localize_maps, maps, detector.run, settings)


@pytest.mark.parametrize("features", ["extracted", "kept"])
def test_pairs_feature_cache(benchmark, tmp_path_factory, features):
    """`vcl-fast localize --pairs` on the example pair both ways round, the embedded model: every video's
    features extracted (no --features folder), or read back from a folder an earlier run filled."""
    from pathlib import Path

    from vcl_fast.api import Localizer
    from vcl_fast.localize_commands import feature_cache, localize_pairs, model_identity

    examples = Path(__file__).resolve().parents[1] / "examples"
    paths = {"query": examples / "query.mp4", "reference": examples / "reference.mp4"}
    pairs = [("query", "reference"), ("reference", "query")]
    loc = Localizer()
    load = None
    if features == "kept":
        load = feature_cache(loc, paths, tmp_path_factory.mktemp("features"), model_identity(None))
        localize_pairs(loc, pairs, paths, load=load)  # fills the folder
    benchmark(localize_pairs, loc, pairs, paths, load=load)
