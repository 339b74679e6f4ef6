"""pytest-benchmark versions of the benchmark workloads: mlpfast and numpy side by side.

Run with ``pytest benches/ --benchmark-group-by=param:name`` (pytest-benchmark installed, a
release build of mlpfast). ``benches/run.py`` makes the full table with medians and ratios;
these give pytest-benchmark's statistics for the same work.
"""

from __future__ import annotations

import pytest
import workloads as wl

NAMES = [w.name for w in wl.WORKLOADS]


@pytest.fixture(scope="module", params=NAMES)
def setup(request):
    """Data and starting weights of one workload."""
    w = wl.BY_NAME[request.param]
    X, y = w.data()
    return w, X, y, wl.init_params(w)


@pytest.mark.parametrize("contender", ["mlpfast", "numpy"])
def test_train(benchmark, setup, contender):
    w, X, y, params = setup
    benchmark.group = w.name
    if contender == "mlpfast":
        # A fresh model per round, built outside the timing.
        benchmark.pedantic(
            wl.train_mlpfast,
            setup=lambda: ((w, wl.mlpfast_model(w, params), X, y), {}),
            rounds=3,
            iterations=1,
        )
    else:
        benchmark.pedantic(wl.train_numpy, args=(w, X, y, params), rounds=3, iterations=1)
    benchmark.extra_info["gflop"] = w.flops_per_epoch() * w.epochs / 1e9
