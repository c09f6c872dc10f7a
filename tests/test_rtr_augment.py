import dataclasses

import numpy as np
import pytest
from rtr_fixtures import skimage_photo

from vcl_fast.data.augment import EDITS, HELDOUT_EDITS, TRAIN_EDITS, EditSpace, copy_edit


@pytest.fixture(scope="module")
def photo():
    return skimage_photo("astronaut", 96)


@pytest.fixture(scope="module")
def background():
    return skimage_photo("coffee", 120)


def _array(image):
    return np.asarray(image.convert("RGB"))


@pytest.mark.parametrize("name", list(EDITS))
@pytest.mark.parametrize("space", [TRAIN_EDITS, HELDOUT_EDITS], ids=["train", "heldout"])
def test_each_edit_changes_the_image_and_is_deterministic(photo, background, name, space):
    edit = EDITS[name]
    first = edit(photo, np.random.default_rng(7), space, background)
    again = edit(photo, np.random.default_rng(7), space, background)
    assert first.mode == "RGB"
    assert np.array_equal(_array(first), _array(again))
    changed = first.size != photo.size or not np.array_equal(_array(first), _array(photo))
    assert changed, f"{name} left the image unchanged"


def test_pip_without_background_uses_blurred_self(photo):
    out = EDITS["pip"](photo, np.random.default_rng(0), TRAIN_EDITS, None)
    assert out.size == photo.size
    assert not np.array_equal(_array(out), _array(photo))


def test_copy_edit_chain_is_seeded_and_reports_edits(photo, background):
    a, tags_a = copy_edit(photo, np.random.default_rng(3), TRAIN_EDITS, background)
    b, tags_b = copy_edit(photo, np.random.default_rng(3), TRAIN_EDITS, background)
    assert tags_a == tags_b and np.array_equal(_array(a), _array(b))
    assert tags_a and set(tags_a) <= set(EDITS)
    assert [t for t in EDITS if t in tags_a] == tags_a  # chain order
    seen = set()
    for seed in range(40):
        _, tags = copy_edit(photo, np.random.default_rng(seed), TRAIN_EDITS, background)
        assert not {"pip", "pad"} <= set(tags)
        seen.update(tags)
    assert seen == set(EDITS)


def test_min_edits_and_forced_edit(photo):
    nothing = dataclasses.replace(TRAIN_EDITS, probabilities={})
    _, tags = copy_edit(photo, np.random.default_rng(0), nothing, min_edits=3)
    assert len(tags) == 3
    only_pip = dataclasses.replace(TRAIN_EDITS, probabilities={"pip": 1.0})
    _, tags = copy_edit(photo, np.random.default_rng(0), only_pip, min_edits=1)
    assert tags == ["pip"]


def test_heldout_ranges_do_not_overlap_training():
    for field in dataclasses.fields(EditSpace):
        if field.name == "probabilities":
            continue
        (tl, th), (hl, hh) = getattr(TRAIN_EDITS, field.name), getattr(HELDOUT_EDITS, field.name)
        assert hh <= tl or hl >= th, field.name
