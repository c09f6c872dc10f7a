"""The journal of finished pairs that lets an interrupted ``vcl-fast localize --pairs`` resume."""
import json

import numpy as np
import pytest

from vcl_fast.data.pair_journal import PairJournal

SETTINGS = {"method": "yolox", "fps": 1.0, "params": "DetectionSettings(conf_threshold=0.1)"}


def test_records_read_back_exactly_and_the_file_appears_with_the_first(tmp_path):
    path = tmp_path / "sub" / "preds.json.partial"
    journal = PairJournal(path, SETTINGS)
    assert not path.exists()  # nothing recorded yet: nothing on disk
    boxes = np.array([[0.1, 1 / 3, 2.5, 3.25, 0.875], [4.0, 5.0, 6.0, 7.0, 1e-9]])
    journal.record({("q", "r"): boxes, ("q", "empty"): np.zeros((0, 5))}, {"bad": "bad.mp4: cannot open"})
    journal.record({("r", "q"): boxes[:1]}, {"bad": "bad.mp4: cannot open"})  # a video is recorded once
    journal.close()
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["settings"] == SETTINGS
    again = PairJournal(path, dict(SETTINGS))
    assert list(again.done) == [("q", "r"), ("q", "empty"), ("r", "q")]
    np.testing.assert_array_equal(again.done[("q", "r")], boxes)  # bit for bit
    assert again.done[("q", "empty")].shape == (0, 5) and again.unreadable == {"bad": "bad.mp4: cannot open"}
    again.remove()
    assert not path.exists()


def test_a_torn_last_line_is_dropped_and_appending_goes_on(tmp_path):
    path = tmp_path / "j.partial"
    journal = PairJournal(path, SETTINGS)
    journal.record({("a", "b"): np.ones((1, 5))}, {})
    journal.close()
    with open(path, "a") as handle:
        handle.write('{"pair": ["c", "d"], "box')
    resumed = PairJournal(path, SETTINGS)
    assert list(resumed.done) == [("a", "b")]
    resumed.record({("c", "d"): np.zeros((0, 5))}, {})
    resumed.close()
    assert list(PairJournal(path, SETTINGS).done) == [("a", "b"), ("c", "d")]


@pytest.mark.parametrize("content, message", [
    ('{"something": "else"}\n', "not a journal of vcl-fast localize --pairs"),
    ("query_id,reference_id\n", "line 1 is not JSON"),
])
def test_a_file_that_is_not_a_journal_is_refused(tmp_path, content, message):
    path = tmp_path / "preds.json.partial"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        PairJournal(path, SETTINGS)
    assert path.read_text() == content


def test_other_settings_are_refused_naming_what_differs(tmp_path):
    path = tmp_path / "j.partial"
    journal = PairJournal(path, SETTINGS)
    journal.record({("a", "b"): np.ones((1, 5))}, {})
    journal.close()
    with pytest.raises(ValueError, match=r"other settings \(fps, method differ\)"):
        PairJournal(path, {**SETTINGS, "fps": 2.0, "method": "tn"})
