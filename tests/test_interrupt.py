"""Ctrl-C during fit(): KeyboardInterrupt within a second, weights of the last completed step."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import mlpfast


@pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")
def test_sigint_stops_fit_within_a_second_and_keeps_trained_weights():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 256)).astype(np.float32)
    y = rng.integers(0, 10, 4096)
    model = mlpfast.MLP([256, 512, 512, 10], seed=0)
    before = [layer.weight.copy() for layer in model.layers[::2]]

    sent = {}

    def interrupt():
        sent["at"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(0.5, interrupt)
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            # Thousands of epochs: minutes of work unless the interrupt stops it.
            model.fit(X, y, epochs=5000, batch_size=64, lr=1e-3, seed=0)
        stopped = time.perf_counter()
    finally:
        timer.cancel()

    assert "at" in sent
    assert stopped - sent["at"] < 1.0
    after = [layer.weight for layer in model.layers[::2]]
    # Training ran for half a second: the weights moved, and they are whole (finite), not
    # half-written.
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert all(np.isfinite(a).all() for a in after)
    # The model is usable afterwards.
    assert model.predict(X[:10]).shape == (10,)


def test_an_interrupted_fit_counts_the_samples_of_its_completed_epochs():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((50, 4))
    y = rng.integers(0, 3, 50)
    model = mlpfast.MLP([4, 6, 3], seed=0)
    model.fit(X, y, epochs=1)
    assert model.samples_seen == 50

    def stop_hard(info):
        if info["epoch"] == 2:
            raise RuntimeError("stop")

    with pytest.raises(RuntimeError, match="stop"):
        model.fit(X, y, epochs=5, callbacks=stop_hard)
    assert model.samples_seen == 50 + 2 * 50
