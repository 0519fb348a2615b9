"""Process-parallel map for CPU-bound work (rendering scenes, scoring clips): spawned workers, results in order."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def spawn_map(fn: Callable[[T], R], items: Iterable[T], *, workers: int, chunksize: int = 1) -> Iterator[R]:
    """Yield `fn(item)` for every item, in order; in this process when `workers` <= 1 or there is one item.

    Workers are spawned, not forked: callers (the demo, tests, a Ray driver) hold threads — an S3 client's event
    loop, ONNX Runtime's or torch's pools — and a forked child can inherit one of their locks held and hang for
    ever (seen in the test suite). When iteration stops early (an error, a consumer that breaks off), work not
    started is cancelled.
    """
    items = list(items)
    n = min(workers, len(items))
    if n <= 1:
        yield from map(fn, items)
        return
    pool = ProcessPoolExecutor(n, mp_context=get_context("spawn"))
    try:
        yield from pool.map(fn, items, chunksize=chunksize)
    finally:
        pool.shutdown(cancel_futures=True)
