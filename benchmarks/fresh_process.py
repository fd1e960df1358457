"""Run one measurement in a fresh spawned process, so its imports, thread settings and peak memory are its own."""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable
from typing import Any


def in_fresh_process(target: Callable[..., None], *args: Any) -> Any:
    """Call `target(*args, queue)` in a new (spawned) process and return what it put on the queue; a worker that
    exits with an error raises RuntimeError naming it."""
    context = mp.get_context("spawn")
    queue = context.Queue()
    proc = context.Process(target=target, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    if proc.exitcode != 0:
        raise RuntimeError(f"{target.__name__} worker exited with code {proc.exitcode}")
    return result
