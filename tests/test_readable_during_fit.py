"""The model during a fit: readable from callbacks and other threads, not writable into it.

A fit trains on its own copy of the parameters and publishes it into the model at epoch
ends: at every one, before the callbacks run, when there are callbacks; otherwise at most
every 10 ms. So reading the weights (read-only copies while the fit runs), predicting,
saving and pickling work during a fit and show a completed epoch (in a callback, that
epoch); writes into the weights from elsewhere cannot change what the fit computes.
"""

from __future__ import annotations

import pickle
import threading
import time
import warnings

import numpy as np
import pytest

import mlpfast

EPOCHS = 4


def data(seed: int = 0, n: int = 600):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
    return X, y


def model():
    return mlpfast.MLP([10, 32, 16, 3], seed=1)


def train(m, X, y, epochs=EPOCHS, **kw):
    return m.fit(X, y, epochs=epochs, batch_size=32, optimizer="adam", lr=1e-2, seed=5, **kw)


def weights(m):
    return [np.array(lay.weight) for lay in m.param_layers]


def after(epochs: int):
    """A twin model trained for ``epochs`` epochs: what the model holds after that epoch."""
    X, y = data()
    twin = model()
    train(twin, X, y, epochs=epochs)
    return twin


def test_in_a_callback_the_model_is_the_epochs_model(tmp_path):
    X, y = data()
    m = model()
    seen = []

    def callback(info):
        assert info["model"] is m
        e = info["epoch"]
        path = tmp_path / f"epoch{e}.safetensors"
        mlpfast.save(m, path)
        seen.append(
            (
                weights(m),
                m.predict(X),
                m.score(X, y),
                pickle.loads(pickle.dumps(m)),
                path,
                m.samples_seen,
                len(m.history["loss"]),
            )
        )

    train(m, X, y, callbacks=callback)
    assert len(seen) == EPOCHS
    for e, (w, pred, score, copy, path, samples, epochs) in enumerate(seen, start=1):
        ref = after(e)
        for a, b in zip(w, weights(ref)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(pred, ref.predict(X))
        assert score == ref.score(X, y)
        np.testing.assert_array_equal(copy.predict_proba(X), ref.predict_proba(X))
        # A checkpoint per epoch, each loadable and holding that epoch's weights.
        for a, b in zip(weights(mlpfast.load(path)), weights(ref)):
            np.testing.assert_array_equal(a, b)
        assert samples == e * len(X)
        assert epochs == e


def test_during_a_fit_weights_are_read_only_copies_and_live_views_after():
    X, y = data()
    m = model()
    old_view = m.layers[0].weight
    during = []

    def callback(info):
        lay = info["model"].layers[0]
        w, b = lay.weight, lay.bias
        for arr in (w, b):
            with pytest.raises(ValueError, match="read-only"):
                arr[...] = 0.0
        # A copy of the epoch: the model's own view of the same memory agrees with it.
        np.testing.assert_array_equal(w, old_view)
        during.append(w)

    train(m, X, y, callbacks=callback)
    np.testing.assert_array_equal(during[-1], weights(after(EPOCHS))[0])
    assert not np.shares_memory(during[0], during[-1])
    # After the fit the layer gives live, writeable views again.
    view = m.layers[0].weight
    assert view.flags.writeable and np.shares_memory(view, old_view)
    view[0, 0] = 7.0
    assert m.layers[0].weight[0, 0] == 7.0 and old_view[0, 0] == 7.0


def test_another_thread_reads_and_predicts_during_a_fit():
    X, y = data(n=3000)
    m = mlpfast.MLP([10, 256, 256, 3], seed=1)
    done = threading.Event()
    reads, errors = [0], []

    def reader():
        while not done.is_set():
            try:
                w = np.array(m.layers[0].weight)
                assert np.isfinite(w).all()
                assert m.predict(X[:50]).shape == (50,)
                m.forward(X[:5])
                m.score(X[:50], y[:50])
                reads[0] += 1
            except Exception as e:  # the test reports any failure
                errors.append(e)
                return

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        m.fit(X, y, epochs=6, batch_size=16, lr=1e-2, seed=5)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert reads[0] > 0


def test_without_callbacks_other_threads_see_completed_epochs_at_most_every_10ms():
    X, y = data(n=256)
    epochs = 400

    def wide():  # epochs of about a millisecond: many per publication
        return mlpfast.MLP([10, 256, 256, 3], seed=1)

    def fit(m, **kw):
        m.fit(X, y, epochs=epochs, batch_size=64, lr=1e-2, seed=5, **kw)

    # Every epoch's first-layer weight, from a callback (the weights do not depend on how
    # often they are published).
    per_epoch = []
    fit(wide(), callbacks=lambda info: per_epoch.append(info["model"].layers[0].weight.tobytes()))
    assert len(set(per_epoch)) == epochs

    m = wide()
    start = m.layers[0].weight.tobytes()
    seen, done = [], threading.Event()

    def reader():
        while not done.is_set():
            w = m.layers[0].weight.tobytes()
            if w != (seen[-1] if seen else start):
                seen.append(w)
            time.sleep(2e-4)

    thread = threading.Thread(target=reader)
    thread.start()
    began = time.perf_counter()
    try:
        fit(m)
    finally:
        elapsed = time.perf_counter() - began
        done.set()
        thread.join()
    # Each state another thread saw is a completed epoch's, in order, and they were
    # published at most every 10 ms (and once at the end).
    index = {w: e for e, w in enumerate(per_epoch)}
    assert all(w in index for w in seen)
    order = [index[w] for w in seen]
    assert order == sorted(order)
    assert m.layers[0].weight.tobytes() == per_epoch[-1]
    assert len(seen) <= elapsed / 0.010 + 2
    if elapsed > 0.1:
        assert len(seen) >= 2  # a long fit is visible before it ends


def test_writes_into_an_old_view_during_a_fit_do_not_change_it():
    X, y = data()
    m = model()
    view = m.layers[0].weight  # a live view, taken before the fit
    stop = threading.Event()

    def writer():
        while not stop.is_set():
            view[...] = 0.0
            m.layers[2].bias = np.full(16, 7.0, dtype=np.float32)

    thread = threading.Thread(target=writer)

    def callback(info):
        if info["epoch"] == 1:
            thread.start()
        if info["epoch"] == EPOCHS:
            # The fit publishes its own weights once more when it returns.
            stop.set()
            thread.join()

    train(m, X, y, callbacks=callback)
    for a, b in zip(weights(m), weights(after(EPOCHS))):
        np.testing.assert_array_equal(a, b)


def test_a_second_fit_of_a_training_model_is_refused():
    X, y = data()
    m = model()
    errors = []

    def callback(info):
        def other():
            try:
                m.fit(X, y, epochs=1)
            except RuntimeError as e:
                errors.append(e)

        t = threading.Thread(target=other)
        t.start()
        t.join()

    train(m, X, y, epochs=2, callbacks=callback)
    assert len(errors) == 2
    assert "training already" in str(errors[0])
    # And once the fit is over, the model fits again.
    m.fit(X, y, epochs=1)


def test_gates_and_predictions_in_many_threads_never_panic():
    X, y = data(n=2000)
    m = mlpfast.MLP([10, 64, 3], activation="maxout", seed=2)
    errors = []

    def work(i):
        try:
            for _ in range(30):
                if i % 2:
                    m.loss(X[:64], y[:64])
                else:
                    m.predict_proba(X)
        except BaseException as e:  # a PanicException is a BaseException
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_the_estimators_curves_are_the_cores_history():
    pytest.importorskip("sklearn")
    from mlpfast.sklearn import MLPClassifier, MLPRegressor

    X, y = data()
    clf = MLPClassifier(hidden_layer_sizes=(16,), max_iter=8, early_stopping=True, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
        reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
        reg.fit(X, np.stack([X[:, 0], X[:, 1] - X[:, 2]], axis=1))
    history = clf._mlp.history
    assert clf.loss_curve_ == history["loss"]
    assert clf.validation_scores_ == history["val_accuracy"]
    assert clf.validation_loss_curve_ == history["val_loss"]
    assert clf.t_ == clf._mlp.samples_seen
    # The regressor's network reports its losses on scikit-learn's scale already (the data
    # term divided by the outputs): the curve is its history.
    assert reg.loss_curve_ == reg._mlp.history["loss"]
