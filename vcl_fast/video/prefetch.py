"""Run an iterator (a video decoder) in a background thread, a bounded number of items ahead of its consumer.

PyAV decodes and ONNX Runtime runs with the GIL released, so decoding the next chunk of frames while the
current one is embedded uses a second core. Items come out in order; an exception raised by the iterator is
raised again in the consumer, in place of the item it stopped at. Leaving the ``with`` block early stops the
producer after the item it is working on and closes the iterator in its thread.
"""
from __future__ import annotations

import contextlib
import queue
import threading
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")

_END = object()  # the producer's last message when the iterator is exhausted


@contextlib.contextmanager
def prefetch(items: Iterable[T], depth: int = 1) -> Iterator[Iterator[T]]:
    """Yield an iterator over ``items`` produced by a background thread.

    depth: items produced ahead and not yet taken (>= 1); with the one being produced and the one being
    consumed, at most ``depth + 2`` items exist at a time.
    """
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}")
    source = iter(items)
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                if stop.is_set():
                    return
                ready.put((item, None))
            ready.put((_END, None))
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put((_END, exc))
        finally:
            close = getattr(source, "close", None)
            if close is not None:
                close()

    def consume() -> Iterator[T]:
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is _END:
                return
            yield item

    producer = threading.Thread(target=produce, name="vcl_fast-prefetch", daemon=True)
    producer.start()
    try:
        yield consume()
    finally:
        stop.set()
        while producer.is_alive():  # take what it puts so that it sees the stop flag
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.01)
        producer.join()
