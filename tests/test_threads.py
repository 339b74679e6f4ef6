"""Threads: the limit and where it comes from, the ecosystem's limits, determinism.

mlpfast's limit is set_num_threads(n), else MLPFAST_NUM_THREADS, else OMP_NUM_THREADS, else
the cores the process may run on; threadpoolctl lists and limits it, and joblib's, dask's
and Ray's workers pass theirs through OMP_NUM_THREADS. Whatever the limit and whatever the
pacer decides while training, results are the same bits.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import mlpfast

BIG = [256, 512, 256, 10]
SMALL = [6, 9, 4]


def run(sizes, dtype, threads, optimizer):
    """Build, train (shuffled, seeded) and evaluate a model with ``threads`` threads."""
    mlpfast.set_num_threads(threads)
    assert mlpfast.get_num_threads() == threads
    rng = np.random.default_rng(0)
    n = 300 if sizes is BIG else 37
    X = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    model = mlpfast.MLP(sizes, dtype=dtype, seed=11)
    history = model.fit(
        X[:-20],
        y[:-20],
        epochs=2,
        batch_size=128 if sizes is BIG else 8,
        optimizer=optimizer,
        lr=0.01,
        momentum=0.9 if optimizer == "sgd" else 0.0,
        weight_decay=1e-4,
        seed=5,
        validation_data=(X[-20:], y[-20:]),
    )
    weights = [
        (lay.weight.copy(), lay.bias.copy()) for lay in model.layers if hasattr(lay, "weight")
    ]
    scores = model.forward(X)
    loss, grads = model.loss(X, y)
    return history, weights, scores, loss, grads


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [SMALL, BIG], ids=["small", "big"])
def test_bit_identical_across_thread_counts(restore_threads, sizes, dtype, optimizer):
    ref = run(sizes, dtype, 1, optimizer)
    for threads in (2, 3, 8):
        h, w, s, loss, grads = run(sizes, dtype, threads, optimizer)
        assert h == ref[0], threads  # exact float equality of every history entry
        for (a, b), (c, d) in zip(w, ref[1]):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)
        np.testing.assert_array_equal(s, ref[2])
        assert loss == ref[3]
        for (a, b), (c, d) in zip(grads, ref[4]):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


NEW_SETTINGS = {
    "adamw": {"optimizer": "adamw", "weight_decay": 0.1},
    "rmsprop": {"optimizer": "rmsprop", "weight_decay": 1e-3},
    "rmsprop_momentum": {"optimizer": "rmsprop", "momentum": 0.7, "alpha": 0.9},
    "clip_sgd": {"optimizer": "sgd", "momentum": 0.9, "clip_grad_norm": 0.05},
    "clip_adamw": {"optimizer": "adamw", "weight_decay": 0.1, "clip_grad_norm": 0.05},
    "cosine_warmup": {"optimizer": "adam", "schedule": "cosine", "warmup_epochs": 1},
}


def run_new(sizes, dtype, threads, settings):
    """A shuffled, seeded fit with ``threads`` threads: its history and weights."""
    mlpfast.set_num_threads(threads)
    rng = np.random.default_rng(0)
    n = 300 if sizes is BIG else 37
    X = rng.standard_normal((n, sizes[0]))
    y = rng.integers(0, sizes[-1], n)
    model = mlpfast.MLP(sizes, dtype=dtype, seed=11)
    history = model.fit(
        X, y, epochs=2, batch_size=128 if sizes is BIG else 8, lr=0.01, seed=5, **settings
    )
    return history, [(lay.weight.copy(), lay.bias.copy()) for lay in model.param_layers]


@pytest.mark.parametrize("name", list(NEW_SETTINGS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("sizes", [SMALL, BIG], ids=["small", "big"])
def test_new_optimizers_and_clipping_bit_identical_across_thread_counts(
    restore_threads, sizes, dtype, name
):
    # The clipping norm adds up per-task sums in task order, whatever the threads.
    ref = run_new(sizes, dtype, 1, NEW_SETTINGS[name])
    for threads in (2, 3):
        h, w = run_new(sizes, dtype, threads, NEW_SETTINGS[name])
        assert h == ref[0], threads
        for (a, b), (c, d) in zip(w, ref[1]):
            np.testing.assert_array_equal(a, c)
            np.testing.assert_array_equal(b, d)


def test_repeat_runs_identical(restore_threads):
    # Same seeds, same thread count: identical (no hidden global state between runs).
    a = run(SMALL, "float64", 2, "adam")
    b = run(SMALL, "float64", 2, "adam")
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[2], b[2])


def test_set_get_num_threads(restore_threads):
    for n in (1, 2, 8, 1024):
        mlpfast.set_num_threads(n)
        assert mlpfast.get_num_threads() == n
    assert isinstance(mlpfast.get_num_threads(), int)


def test_layers_identical_across_thread_counts(restore_threads):
    # A big Linear forward/backward also does not depend on the thread count.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((200, 300))
    dout = rng.standard_normal((200, 400))
    out = {}
    for threads in (1, 2):
        mlpfast.set_num_threads(threads)
        layer = mlpfast.Linear(300, 400, dtype="float32", seed=3)
        y = layer.forward(x)
        dx = layer.backward(dout)
        out[threads] = (y, dx, layer.grad_weight, layer.grad_bias)
    for a, b in zip(out[1], out[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("activation", ["tanh", "maxout"])
def test_large_batches_cut_into_many_shards_are_bit_identical(restore_threads, activation):
    # A batch of 600 rows is cut into 4 shards and the first layer's gradient into several
    # row blocks; 1, 2, 3 and 8 threads must still agree to the bit, run after run, and so
    # must predict on many chunks of rows. (Maxout layers of unequal widths share a scratch
    # buffer that shards once overlapped in.)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((5300, 64)).astype(np.float32)
    y = rng.integers(0, 5, 5300)
    results = []
    for threads in (1, 2, 2, 2, 3, 8):
        mlpfast.set_num_threads(threads)
        model = mlpfast.MLP([64, 200, 100, 5], activation=activation, seed=2)
        h = model.fit(X[:1300], y[:1300], epochs=3, batch_size=600, optimizer="adam", lr=1e-3)
        weights = [lay.weight.copy() for lay in model.layers[::2]]
        results.append((h["loss"], weights, model.predict_proba(X)))
    for loss, weights, proba in results[1:]:
        assert loss == results[0][0]
        for a, b in zip(weights, results[0][1]):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(proba, results[0][2])


# ------------------------------------------------------------------ where the limit comes from
def threads_in_fresh_process(env: dict[str, str], cpus: set[int] | None = None) -> int:
    """get_num_threads() in a new interpreter with ``env`` (and, if given, CPU affinity)."""
    clean = {
        k: v for k, v in os.environ.items() if k not in ("MLPFAST_NUM_THREADS", "OMP_NUM_THREADS")
    }
    clean.update(env)
    pin = f"os.sched_setaffinity(0, {sorted(cpus)!r}); " if cpus is not None else ""
    code = f"import os; {pin}import mlpfast; print(mlpfast.get_num_threads())"
    out = subprocess.run(
        [sys.executable, "-c", code], env=clean, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip())


def test_omp_num_threads_is_honoured():
    assert threads_in_fresh_process({"OMP_NUM_THREADS": "1"}) == 1
    assert threads_in_fresh_process({"OMP_NUM_THREADS": "3"}) == 3
    # A nested list: the first level counts, as OpenMP reads it.
    assert threads_in_fresh_process({"OMP_NUM_THREADS": "2,1"}) == 2


def test_mlpfast_num_threads_takes_precedence_over_omp():
    env = {"MLPFAST_NUM_THREADS": "5", "OMP_NUM_THREADS": "1"}
    assert threads_in_fresh_process(env) == 5


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_the_default_is_the_cores_the_process_may_run_on():
    # Pinned to one core, a process defaults to one thread whatever the machine has.
    assert threads_in_fresh_process({}, cpus={0}) == 1
    # Values that are not a count >= 1 fall through to the next source.
    assert threads_in_fresh_process({"MLPFAST_NUM_THREADS": "0", "OMP_NUM_THREADS": "x"}, {0}) == 1


def test_set_num_threads_takes_precedence_over_the_environment():
    env = {"MLPFAST_NUM_THREADS": "5", "OMP_NUM_THREADS": "1"}
    clean = {k: v for k, v in os.environ.items() if k not in env}
    clean.update(env)
    code = "import mlpfast; mlpfast.set_num_threads(2); print(mlpfast.get_num_threads())"
    out = subprocess.run([sys.executable, "-c", code], env=clean, capture_output=True, text=True)
    assert out.stdout.strip() == "2"


# ------------------------------------------------------------------------------ threadpoolctl
def test_threadpoolctl_lists_and_limits_mlpfast(restore_threads):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    mlpfast.set_num_threads(2)
    ours = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "mlpfast"]
    assert len(ours) == 1
    assert ours[0]["internal_api"] == "mlpfast"
    assert ours[0]["num_threads"] == 2
    assert ours[0]["version"] == mlpfast.__version__
    assert ours[0]["limit_source"] == "set_num_threads"
    assert ours[0]["filepath"] == os.path.realpath(mlpfast._core.__file__)
    with threadpoolctl.threadpool_limits(1):
        assert mlpfast.get_num_threads() == 1
        # A fit under the limit is the same fit.
        X = np.random.default_rng(0).standard_normal((64, 5))
        mlpfast.MLP([5, 3, 2], seed=0).fit(X, (X[:, 0] > 0).astype(int), epochs=1)
    assert mlpfast.get_num_threads() == 2
    with threadpoolctl.threadpool_limits(limits=3, user_api="mlpfast"):
        assert mlpfast.get_num_threads() == 3
    # Limits for other pools leave mlpfast alone.
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        assert mlpfast.get_num_threads() == 2


# --------------------------------------------------------------------- joblib, dask workers
def test_loky_workers_see_the_joblib_limit(monkeypatch):
    joblib = pytest.importorskip("joblib")
    monkeypatch.delenv("MLPFAST_NUM_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    # joblib gives each of its n_jobs workers an equal share of the cores.
    expected = max(joblib.cpu_count() // 2, 1)
    got = joblib.Parallel(n_jobs=2, backend="loky")(
        joblib.delayed(mlpfast.get_num_threads)() for _ in range(4)
    )
    assert got == [expected] * 4


def test_grid_search_on_dask_workers_uses_their_limit():
    pytest.importorskip("sklearn")
    distributed = pytest.importorskip("distributed")
    import joblib
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from mlpfast.sklearn import MLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        # dask starts its worker processes with OMP_NUM_THREADS=1.
        assert set(client.run(mlpfast.get_num_threads).values()) == {1}
        search = GridSearchCV(
            MLPClassifier(max_iter=100, random_state=0),
            {"hidden_layer_sizes": [(32,), (64,)], "alpha": [1e-4, 1e-2]},
            cv=3,
            n_jobs=2,
        )
        with joblib.parallel_backend("dask"):
            search.fit(X, y)
    assert search.best_score_ > 0.9
    assert len(search.cv_results_["mean_test_score"]) == 4
