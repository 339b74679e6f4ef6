"""The benchmark's contenders compute the same training, and pytest-benchmark timings of it.

* ``test_numpy_matches_mlpfast`` and ``test_jax_matches_numpy``: on small networks, numpy's
  contender ends with mlpfast's weights, and each JAX contender with numpy's, so that the
  benchmark compares the same computation (no timing).
* ``test_train``: pytest-benchmark versions of the workloads, mlpfast and numpy side by side
  (skipped without pytest-benchmark). Run with ``pytest benches/ --benchmark-group-by=param:name``
  on a release build; ``benches/run.py`` makes the full table with medians and ratios.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import workloads as wl

NAMES = [w.name for w in wl.WORKLOADS]
ACTIVATIONS = [*wl.NUMPY_ACTIVATIONS, "maxout"]


def small(activation: str, loss: str, dtype: str, batch: int, samples: int, epochs: int = 1):
    """A small workload (three layers) for the equivalence checks."""
    return wl.Workload(
        "check", (20, 16, 12, 5), activation, loss, batch, samples, epochs, dtype, 1, 1
    )


def assert_same_weights(got, want, dtype: str) -> None:
    """Every weight and bias equal up to float rounding of ``dtype``."""
    tol = 1e-5 if dtype == "float32" else 1e-12
    for a, b in zip([*got[0], *got[1]], [*want[0], *want[1]]):
        assert a.dtype == b.dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("loss", ["softmax", "mse"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_numpy_matches_mlpfast(activation, loss):
    # One batch per epoch: the order of the rows does not matter, so the two shuffles may differ.
    w = small(activation, loss, "float64", batch=40, samples=40, epochs=3)
    X, y = w.data()
    params = wl.init_params(w)
    model = wl.mlpfast_model(w, params)
    wl.train_mlpfast(w, model, X, y)
    got = wl.train_numpy(w, X, y, params)
    want = (
        [layer.weight for layer in model.param_layers],
        [layer.bias for layer in model.param_layers],
    )
    assert_same_weights(got, want, w.dtype)
    # The training moved the weights: the comparison is not of two untouched copies.
    assert not np.allclose(got[0][0], params[0][0])


JAX_CASES = [
    ("relu", "softmax", "float32"),
    ("relu", "softmax", "float64"),
    ("sigmoid", "mse", "float64"),
    ("tanh", "mse", "float32"),
]


@pytest.mark.parametrize("kind", ["step", "scan"])
@pytest.mark.parametrize(("activation", "loss", "dtype"), JAX_CASES)
def test_jax_matches_numpy(kind, activation, loss, dtype):
    pytest.importorskip("jax")
    import jax_train

    # 100 rows in batches of 8: twelve full batches and a partial one of 4, two epochs.
    w = small(activation, loss, dtype, batch=8, samples=100, epochs=2)
    X, y = w.data()
    params = wl.init_params(w)
    trainer = jax_train.JaxTrainer(w, X, y)
    got = jax_train.to_numpy(trainer.prepare(kind, params)())
    assert_same_weights(got, wl.train_numpy(w, X, y, params), dtype)


@pytest.fixture(scope="module", params=NAMES)
def setup(request):
    """Data and starting weights of one workload."""
    w = wl.BY_NAME[request.param]
    X, y = w.data()
    return w, X, y, wl.init_params(w)


@pytest.mark.skipif(
    importlib.util.find_spec("pytest_benchmark") is None, reason="needs pytest-benchmark"
)
@pytest.mark.parametrize("contender", ["mlpfast", "numpy"])
def test_train(request, setup, contender):
    # The fixture is looked up here, so that the test is skipped, not failed, without it.
    benchmark = request.getfixturevalue("benchmark")
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


@pytest.mark.parametrize("name", NAMES)
def test_gemm_products_match_layers(name):
    import gemm_bench

    # The --gemm section's products of a step: per layer (in → out) x·W, xᵀ·dy, and dy·Wᵀ
    # but for the first layer, whose input gradient mlpfast never computes.
    w = wl.BY_NAME[name]
    for rows in (w.batch, 3):
        want = []
        for i, (n_in, n_out) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
            want += [(rows, n_in, n_out, False, False), (n_in, rows, n_out, True, False)]
            if i > 0:
                want.append((rows, n_out, n_in, False, True))
        got = gemm_bench.products(w, rows)
        assert [p.shape for p in got] == want
        assert sum(p.flop for p in got) == w.flops_per_step(rows)
    full, last = gemm_bench.steps(w)
    assert full * w.batch + last == w.samples and 0 <= last < w.batch


def test_gemm_floor_counts_every_step():
    import gemm_bench

    # mnist: 60,000 rows in batches of 128, 468 full steps and one of 96 rows, on 2 threads.
    w = wl.BY_NAME["mnist"]
    full, last = gemm_bench.steps(w)
    entry = {
        "products": [{"faer_s": 1.0}, {"faer_s": 2.0}],
        "last_products": [{"faer_s": 0.5}],
    }
    r = {"dtype": "float32", "dtypes": {"float32": entry}, "full_steps": full}
    r.update(last_rows=last, epochs=2, threads=2)
    assert (full, last) == (468, 96)
    assert gemm_bench.floor_seconds(r) == 2 * (468 * 3.0 + 0.5) / 2
