"""How benches/ times things: contenders interleaved in one process, each run on a settled machine.

These machines are shared and noisy, so absolute times drift from minute to minute; a ratio of
two contenders measured turn by turn in the same process meets the same conditions on both
sides. Every timed run starts after a short pause, so that the previous contender's threads
(numpy's OpenBLAS, PyTorch's, mlpfast's) have gone idle.
"""

from __future__ import annotations

import statistics
import time
from typing import Callable, TypeVar

import mlpfast

T = TypeVar("T")

# numpy's OpenBLAS keeps its threads spinning for a while after a product, and so does
# PyTorch's pool; on a small machine they would steal cores from whichever contender runs
# next.
SETTLE = 0.3


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn()`` takes, started on a settled machine."""
    time.sleep(SETTLE)
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def with_threads(n: int, fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` run with mlpfast limited to ``n`` threads."""

    def run() -> T:
        before = mlpfast.get_num_threads()
        mlpfast.set_num_threads(n)
        try:
            return fn()
        finally:
            mlpfast.set_num_threads(before)

    return run


def interleave(setups: dict[str, Callable[[], Callable[[], object]]], runs: int) -> dict:
    """Times every contender ``runs`` times, turn by turn: name -> list of seconds.

    ``setups[name]()`` prepares one run (untimed, e.g. a fresh model) and returns what to time.
    """
    times: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(runs):
        for name, setup in setups.items():
            times[name].append(timed(setup()))
    return times


def medians(times: dict[str, list[float]]) -> dict[str, float]:
    """The median of every contender's runs."""
    return {name: statistics.median(ts) for name, ts in times.items()}
