"""vcl_fast.video.prefetch: order, bounded look-ahead, errors raised where they happened, early exit."""
import threading

import pytest

from vcl_fast.video.prefetch import prefetch


@pytest.mark.parametrize("count, depth", [(0, 1), (1, 1), (7, 1), (7, 3), (50, 2)])
def test_items_arrive_in_order(count, depth):
    with prefetch(range(count), depth) as items:
        assert list(items) == list(range(count))


def test_producer_stays_at_most_depth_plus_one_items_ahead():
    produced, ahead = [], []
    taken = 0

    def source():
        for i in range(20):
            produced.append(i)
            ahead.append(len(produced) - taken)
            yield i

    with prefetch(source(), depth=2) as items:
        for _ in items:
            taken += 1
    assert produced == list(range(20)) and max(ahead) <= 2 + 2


def test_an_error_is_raised_in_place_of_the_item_it_stopped_at():
    def source():
        yield 1
        yield 2
        raise ValueError("corrupt frame")

    received = []
    with pytest.raises(ValueError, match="corrupt frame"):
        with prefetch(source()) as items:
            for item in items:
                received.append(item)
    assert received == [1, 2]


def test_leaving_early_stops_and_closes_the_source_in_its_thread():
    closed_in = []

    def source():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed_in.append(threading.current_thread().name)

    with prefetch(source(), depth=1) as items:
        assert next(items) == 0
    assert closed_in == ["vcl_fast-prefetch"]
    assert not any(t.name == "vcl_fast-prefetch" for t in threading.enumerate())


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_bad_depth(depth):
    with pytest.raises(ValueError, match="depth must be a positive int"):
        with prefetch([1], depth):
            pass
