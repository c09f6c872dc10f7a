"""Map rendering: the numpy separable bicubic resize against torch's F.interpolate."""
import itertools

import numpy as np
import pytest

from vcl_fast.detect.render import bicubic_matrix, render_maps, render_maps_reference

SIZES = [1, 2, 3, 4, 7, 31, 160, 241, 640, 1201]


@pytest.mark.parametrize("out_size", [1, 32, 64, 256, 640])
def test_bicubic_matrix_matches_torch_1d(out_size):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    for n in SIZES:
        expected = F.interpolate(torch.eye(n)[None, None], size=(out_size, n), mode="bicubic",
                                 align_corners=False)[0, 0].numpy()
        np.testing.assert_allclose(bicubic_matrix(n, out_size), expected, atol=2e-6, err_msg=f"n={n}")


def test_bicubic_rows_sum_to_one_and_identity():
    for n, s in itertools.product(SIZES, [1, 5, 64, 640]):
        np.testing.assert_allclose(bicubic_matrix(n, s).sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(bicubic_matrix(37, 37), np.eye(37, dtype=np.float32))
    with pytest.raises(ValueError):
        bicubic_matrix(0, 64)


@pytest.mark.parametrize("size", [32, 64, 640])
def test_render_matches_torch_over_shapes(size):
    rng = np.random.default_rng(size)
    maps = [rng.uniform(-1, 1, (q, r)).astype(np.float32)
            for q, r in itertools.product([1, 2, 5, 77, 1200], [1, 3, 160])]
    maps.append(rng.uniform(-1, 1, (300, 1201)).astype(np.float32))
    np.testing.assert_allclose(render_maps(maps, size), render_maps_reference(maps, size), atol=1e-5)


def test_render_dtypes_and_non_contiguous_views():
    rng = np.random.default_rng(1)
    base = rng.uniform(-1, 1, (90, 150))
    maps = [base.T, base[::2, 1::3], base.astype(np.float16)]  # transposed, strided, reduced precision
    expected = render_maps_reference([np.asarray(m, np.float32) for m in maps], 64)
    np.testing.assert_allclose(render_maps(maps, 64), expected, atol=1e-5)


def test_render_layout_three_equal_channels():
    out = render_maps([np.ones((5, 9), np.float32)], 32)
    assert out.shape == (1, 3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out, 1.0, atol=1e-6)


def test_padded_batch_with_lengths_crops_to_valid_part():
    rng = np.random.default_rng(2)
    padded = np.full((2, 40, 50), 9.0, np.float32)  # padding value must not leak in
    padded[0, :30, :20] = rng.uniform(-1, 1, (30, 20))
    padded[1, :40, :50] = rng.uniform(-1, 1, (40, 50))
    out = render_maps(padded, 64, lengths=np.array([[30, 20], [40, 50]]))
    np.testing.assert_allclose(out, render_maps([padded[0, :30, :20], padded[1]], 64))
    assert out.max() < 2


def test_render_empty_batch_and_errors():
    assert render_maps([], 64).shape == (0, 3, 64, 64)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        render_maps([np.zeros((0, 5), np.float32)], 64)
    with pytest.raises(ValueError, match="non-empty 2-D"):
        render_maps([np.zeros(5, np.float32)], 64)
    with pytest.raises(TypeError, match="floating-point"):
        render_maps([np.zeros((3, 3), np.int32)], 64)
    with pytest.raises(ValueError, match="NaN"):
        render_maps([np.array([[np.nan]], np.float32)], 64)
    with pytest.raises(ValueError, match="lengths must have shape"):
        render_maps(np.zeros((2, 4, 4), np.float32), 64, lengths=np.array([4, 4]))
    with pytest.raises(ValueError, match="lengths must lie"):
        render_maps(np.zeros((1, 4, 4), np.float32), 64, lengths=np.array([[5, 4]]))
    with pytest.raises(ValueError, match="only accepted with a padded"):
        render_maps([np.zeros((4, 4), np.float32)], 64, lengths=np.array([[4, 4]]))
