"""Ctrl-C during fit(): KeyboardInterrupt within half a second, weights of the last whole step.

The main thread polls for signals while a worker trains; the worker stops between steps, and
inside a long step between its work items (a step is never left half-applied). Other Python
threads' fits neither delay the interrupt nor hear it.
"""

import os
import signal
import threading
import time

import numpy as np
import pytest

import mlpfast

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGINT"), reason="needs POSIX signals")

# How long after the signal the fit must have raised.
PROMPT = 0.5


def seconds_to_stop(train, after: float) -> float:
    """Sends this process SIGINT ``after`` seconds into ``train()``, which must then raise
    KeyboardInterrupt; returns how long after the signal it did."""
    sent: dict = {}

    def fire():
        sent["at"] = time.perf_counter()
        os.kill(os.getpid(), signal.SIGINT)

    timer = threading.Timer(after, fire)
    started = time.perf_counter()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            train()
        stopped = time.perf_counter()
    finally:
        timer.cancel()
    assert "at" in sent, f"training ended after {stopped - started:.1f} s, unasked"
    return stopped - sent["at"]


def test_sigint_stops_fit_promptly_and_keeps_trained_weights():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 256)).astype(np.float32)
    y = rng.integers(0, 10, 4096)
    model = mlpfast.MLP([256, 512, 512, 10], seed=0)
    before = [layer.weight.copy() for layer in model.layers[::2]]

    def train():
        # Thousands of epochs: minutes of work unless the interrupt stops it.
        model.fit(X, y, epochs=5000, batch_size=64, lr=1e-3, seed=0)

    assert seconds_to_stop(train, 0.5) < PROMPT
    after = [layer.weight for layer in model.layers[::2]]
    # Training ran for half a second: the weights moved, and they are whole (finite), not
    # half-written.
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    assert all(np.isfinite(a).all() for a in after)
    # The model is usable afterwards.
    assert model.predict(X[:10]).shape == (10,)


def test_sigint_inside_one_long_step_stops_it_and_leaves_the_weights_untouched():
    # One step of a 60,000-row batch through 512-2048-2048-10 is about 1.8 TFLOP: seconds of
    # work. The interrupt must not wait for its end, nor leave it half-applied.
    rng = np.random.default_rng(1)
    X = rng.standard_normal((60_000, 512), dtype=np.float32)
    y = rng.integers(0, 10, 60_000)
    model = mlpfast.MLP([512, 2048, 2048, 10], seed=0)
    before = [(lay.weight.copy(), lay.bias.copy()) for lay in model.layers[::2]]

    def train():
        model.fit(X, y, epochs=1, batch_size=60_000, optimizer="adam", lr=1e-3, seed=0)

    assert seconds_to_stop(train, 1.5) < PROMPT
    for (w, b), lay in zip(before, model.layers[::2]):
        np.testing.assert_array_equal(w, lay.weight)
        np.testing.assert_array_equal(b, lay.bias)
    assert model.samples_seen == 0


def test_sigint_during_validation_stops_it_and_counts_the_trained_epoch():
    # One quick epoch, then a validation pass of seconds (100,000 rows through a wide net):
    # the interrupt stops the pass, and the epoch that trained still counts its samples.
    rng = np.random.default_rng(4)
    X = rng.standard_normal((256, 512), dtype=np.float32)
    y = rng.integers(0, 10, 256)
    Xv = rng.standard_normal((100_000, 512), dtype=np.float32)
    yv = rng.integers(0, 10, 100_000)
    model = mlpfast.MLP([512, 2048, 2048, 10], seed=0)
    before = model.layers[0].weight.copy()

    def train():
        model.fit(X, y, epochs=3, batch_size=256, validation_data=(Xv, yv))

    assert seconds_to_stop(train, 1.0) < PROMPT
    assert model.samples_seen == 256
    assert not np.array_equal(before, model.layers[0].weight)


def test_sigint_reaches_the_main_threads_fit_while_another_thread_fits():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((4096, 256)).astype(np.float32)
    y = rng.integers(0, 10, 4096)
    done = threading.Event()
    background: dict = {}

    def other_fit():
        model = mlpfast.MLP([256, 512, 512, 10], seed=1)
        try:
            # Runs until told to stop through its callback.
            h = model.fit(
                X, y, epochs=10_000, batch_size=256, callbacks=lambda info: not done.is_set()
            )
            background["epochs"] = len(h["loss"])
        except BaseException as e:
            background["error"] = e

    worker = threading.Thread(target=other_fit)
    worker.start()
    try:
        time.sleep(0.3)
        main_model = mlpfast.MLP([256, 512, 512, 10], seed=0)

        def train():
            main_model.fit(X, y, epochs=5000, batch_size=64, lr=1e-3, seed=0)

        assert seconds_to_stop(train, 0.5) < PROMPT
    finally:
        done.set()
        worker.join(timeout=60)
    # The other thread's fit heard nothing of the interrupt and ended normally.
    assert not worker.is_alive()
    assert "error" not in background, background.get("error")
    assert background["epochs"] >= 1


def test_sigint_reaches_a_fit_started_from_a_callback():
    # The main thread's fit is inside its callback, running another fit: the interrupt
    # reaches the inner fit too, instead of waiting for it to finish.
    rng = np.random.default_rng(3)
    X = rng.standard_normal((4096, 256)).astype(np.float32)
    y = rng.integers(0, 10, 4096)
    inner = mlpfast.MLP([256, 512, 512, 10], seed=1)

    def callback(info):
        inner.fit(X, y, epochs=5000, batch_size=64, lr=1e-3)

    outer = mlpfast.MLP([16, 4, 2], seed=0)

    def train():
        outer.fit(X[:64, :16], y[:64] % 2, epochs=2, callbacks=callback)

    assert seconds_to_stop(train, 0.5) < PROMPT


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
