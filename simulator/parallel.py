"""Work spread over forked processes, shut down cleanly."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def fork_map(fn: Callable[[T], R], items: Sequence[T], jobs: int) -> Iterator[R]:
    """``fn`` over ``items`` in ``jobs`` forked processes, results in the order of ``items``
    (in this process when ``jobs`` is 1). The pool is closed and joined once the work is
    done: terminating a fork pool can kill a worker while it holds the task queue's lock
    and leave the other workers, and so the join, waiting forever."""
    if jobs <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    pool = multiprocessing.get_context("fork").Pool(jobs)
    try:
        yield from pool.imap(fn, items)
        pool.close()
    except BaseException:
        pool.terminate()
        raise
    finally:
        pool.join()
