"""Fits and predictions from several Python threads, fits inside fits, and forked processes.

Every fit runs on a thread of mlpfast's pool and shares the process's budget of cores with
whatever else runs; none of it may change a result, wait for another fit, or deadlock.
"""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

import mlpfast


def data(seed: int, n: int = 2000, d: int = 40, k: int = 4):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)).astype(np.float32)
    y = rng.integers(0, k, n)
    return X, y


def train(seed: int) -> tuple[list[np.ndarray], list[float], np.ndarray]:
    """A seeded fit; its weights, loss history and predictions."""
    X, y = data(seed)
    model = mlpfast.MLP([40, 128, 64, 4], seed=seed)
    h = model.fit(X, y, epochs=3, batch_size=64, optimizer="adam", lr=1e-3, seed=seed)
    return [lay.weight.copy() for lay in model.layers[::2]], h["loss"], model.predict_proba(X)


def same(a, b) -> None:
    for wa, wb in zip(a[0], b[0]):
        np.testing.assert_array_equal(wa, wb)
    assert a[1] == b[1]
    np.testing.assert_array_equal(a[2], b[2])


@pytest.mark.parametrize("threads", [1, 2])
def test_fits_in_two_python_threads_give_the_bits_of_one_after_the_other(restore_threads, threads):
    mlpfast.set_num_threads(threads)
    alone = [train(s) for s in (1, 2, 3)]
    together: dict[int, tuple] = {}
    workers = [
        threading.Thread(target=lambda s=s: together.__setitem__(s, train(s))) for s in (1, 2, 3)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    for s, ref in zip((1, 2, 3), alone):
        same(together[s], ref)


def test_predictions_in_many_threads_agree(restore_threads):
    X, y = data(4, n=5000)
    model = mlpfast.MLP([40, 128, 64, 4], seed=4)
    model.fit(X, y, epochs=1)
    ref = model.predict_proba(X)
    out: list[np.ndarray] = []
    workers = [
        threading.Thread(target=lambda: out.append(model.predict_proba(X))) for _ in range(6)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(out) == 6
    for p in out:
        np.testing.assert_array_equal(p, ref)


@pytest.mark.parametrize("threads", [1, 2])
def test_a_fit_started_from_a_callback_completes(restore_threads, threads):
    mlpfast.set_num_threads(threads)
    X, y = data(5, n=400)
    outer = mlpfast.MLP([40, 16, 4], seed=0)
    inner = mlpfast.MLP([40, 16, 4], seed=1)
    scores = []

    def callback(info):
        # A whole fit, and a prediction, from inside the outer fit's callback.
        inner.fit(X, y, epochs=2, batch_size=32, lr=0.05)
        scores.append(inner.score(X, y))

    outer.fit(X, y, epochs=3, batch_size=32, lr=0.05, callbacks=callback)
    assert len(scores) == 3
    # The nested fits are the fits one after the other would be.
    ref = mlpfast.MLP([40, 16, 4], seed=1)
    for _ in range(3):
        ref.fit(X, y, epochs=2, batch_size=32, lr=0.05)
    np.testing.assert_array_equal(ref.layers[0].weight, inner.layers[0].weight)


def test_refitting_the_same_model_from_its_callback_is_refused():
    X, y = data(6, n=200)
    model = mlpfast.MLP([40, 8, 4], seed=0)
    errors = []

    def callback(info):
        try:
            model.fit(X, y, epochs=1)
        except RuntimeError as e:
            errors.append(e)

    model.fit(X, y, epochs=2, callbacks=callback)
    assert len(errors) == 2


def child_fit(queue) -> None:
    """A fit in a forked child; its loss goes back to the parent."""
    X, y = data(7, n=3000)
    model = mlpfast.MLP([40, 128, 4], seed=0)
    queue.put(model.fit(X, y, epochs=2, batch_size=128)["loss"])


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs the fork start method"
)
# Python 3.12 warns that forking a process with threads may deadlock: this checks it doesn't.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_a_forked_child_trains_on_threads_of_its_own(restore_threads):
    # The parent's pool has threads (they do not exist in the child).
    mlpfast.set_num_threads(2)
    X, y = data(7, n=3000)
    expected = mlpfast.MLP([40, 128, 4], seed=0).fit(X, y, epochs=2, batch_size=128)["loss"]
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=child_fit, args=(queue,))
    child.start()
    child.join(timeout=120)
    if child.is_alive():
        child.kill()
        pytest.fail("the forked child's fit did not finish")
    assert child.exitcode == 0
    assert queue.get(timeout=5) == expected
