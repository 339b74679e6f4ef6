"""Determinism: same seeds give bit-identical results whatever the thread count."""

from __future__ import annotations

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
    for threads in (2, 3):
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


def test_repeat_runs_identical(restore_threads):
    # Same seeds, same thread count: identical (no hidden global state between runs).
    a = run(SMALL, "float64", 2, "adam")
    b = run(SMALL, "float64", 2, "adam")
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[2], b[2])


def test_set_get_num_threads(restore_threads):
    mlpfast.set_num_threads(1)
    assert mlpfast.get_num_threads() == 1
    mlpfast.set_num_threads(2)
    assert mlpfast.get_num_threads() == 2
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
    # row blocks; 1, 2 and 3 threads must still agree to the bit, run after run. (Maxout
    # layers of unequal widths share a scratch buffer that shards once overlapped in.)
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1300, 64)).astype(np.float32)
    y = rng.integers(0, 5, 1300)
    results = []
    for threads in (1, 2, 2, 2, 3):
        mlpfast.set_num_threads(threads)
        model = mlpfast.MLP([64, 200, 100, 5], activation=activation, seed=2)
        h = model.fit(X, y, epochs=2, batch_size=600, optimizer="adam", lr=1e-3, seed=9)
        results.append((h["loss"], [lay.weight.copy() for lay in model.layers[::2]]))
    for loss, weights in results[1:]:
        assert loss == results[0][0]
        for a, b in zip(weights, results[0][1]):
            np.testing.assert_array_equal(a, b)
