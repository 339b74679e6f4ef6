"""MLP.fit(sample_weight=...): every batch's loss is the weighted mean over its rows.

Against tests/numpy_reference.py (each row's loss through the reference loss alone, then
sum_i w_i L_i / sum_i w_i), float64, rtol 1e-10; weights of 1 give the unweighted bits; with
full-batch gradient descent, weight 2 on a row is that row written twice; a batch whose rows
all weigh 0 is skipped; the weighted validation loss, metric and MLP.score are scikit-learn's
weighted figures; bad weights are refused before any work.
"""

from __future__ import annotations

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast

N, N_VAL, BATCH, EPOCHS = 23, 9, 5, 4

MODELS = [
    ("softmax", "relu", [5, 8, 6, 3]),
    ("svm", "leaky_relu", [5, 8, 4]),
    ("mse", "sigmoid", [5, 7, 2]),
    ("bce", "tanh", [5, 6, 1]),
    ("bce", "identity", [5, 4, 3]),
    ("huber", "elu", [5, 6, 2]),
    ("mae", "tanh", [5, 6, 2]),
    ("poisson", "sigmoid", [5, 6, 2]),
    ("softmax", "maxout", [5, 6, 3]),
]
IDS = [f"{m[0]}-{m[1]}" for m in MODELS]
OPTIMIZERS = {
    "sgd": {"optimizer": "sgd", "lr": 0.05},
    "nesterov": {"optimizer": "sgd", "lr": 0.03, "momentum": 0.8, "nesterov": True},
    "adam": {"optimizer": "adam", "lr": 0.01, "betas": (0.85, 0.99), "eps": 1e-3},
    "adamw-clip": {"optimizer": "adamw", "lr": 0.01, "eps": 1e-3, "clip_grad_norm": 0.5},
    "rmsprop-cosine": {
        "optimizer": "rmsprop",
        "lr": 0.01,
        "alpha": 0.9,
        "eps": 1e-3,
        "schedule": "cosine",
        "warmup_epochs": 1,
    },
}
RTOL, ATOL = 1e-10, 1e-13


def setup(loss, activation, sizes, seed=0):
    rng = np.random.default_rng(seed + 300)
    model = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=seed)
    X, y = ref.make_data(loss, N + N_VAL, sizes[0], sizes[-1], rng)
    w = rng.uniform(0.0, 3.0, N + N_VAL)
    w[3] = 0.0  # a row that does not count
    return model, (X[:N], y[:N], w[:N]), (X[N:], y[N:], w[N:])


def assert_params_close(model, params, rtol=RTOL, atol=ATOL):
    got = ref.params_of(model)
    for i, ((gw, gb), (rw, rb)) in enumerate(zip(got, params)):
        np.testing.assert_allclose(gw, rw, rtol=rtol, atol=atol, err_msg=f"weight {i}")
        np.testing.assert_allclose(gb, rb, rtol=rtol, atol=atol, err_msg=f"bias {i}")


# --------------------------------------------------------------------------- the reference
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_weighted_fit_matches_numpy(loss, activation, sizes, opt):
    model, (X, y, w), (Xv, yv, wv) = setup(loss, activation, sizes)
    start = ref.params_of(model)
    settings = {**OPTIMIZERS[opt], "weight_decay": 1e-2}
    if "schedule" not in settings:
        settings["lr_decay"] = 0.8
    history = model.fit(
        X,
        y,
        sample_weight=w,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        validation_data=(Xv, yv, wv),
        **settings,
    )
    params, expected = ref.fit(
        start,
        activation,
        loss,
        X,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        validation_data=(Xv, yv, wv),
        sample_weight=w,
        **settings,
    )
    assert_params_close(model, params)
    assert set(history) == {"loss", "val_loss", ref.metric_name(loss)}
    for key in history:
        np.testing.assert_allclose(history[key], expected[key], rtol=RTOL, atol=ATOL, err_msg=key)


@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_weighted_loss_and_gradients_match_numpy(loss, activation, sizes):
    model, (X, y, w), _ = setup(loss, activation, sizes)
    value, grads = model.loss(X, y, sample_weight=w)
    want, want_grads = ref.data_loss_and_grads(ref.params_of(model), activation, loss, X, y, w)
    assert value == pytest.approx(want, rel=1e-12)
    for (gw, gb), (rw, rb) in zip(grads, want_grads):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-14)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_weighted_score_is_sklearns(loss, activation, sizes):
    model, (X, y, w), _ = setup(loss, activation, sizes)
    scores = model.forward(X)
    assert model.score(X, y, sample_weight=w) == pytest.approx(
        ref.weighted_metric(loss, scores, y, w), rel=1e-12
    )
    assert model.score(X, y, sample_weight=np.ones(N)) == model.score(X, y)
    sklearn = pytest.importorskip("sklearn.metrics")
    if loss in ("softmax", "svm"):
        got = sklearn.accuracy_score(y, model.predict(X), sample_weight=w)
    elif loss == "bce":
        t = np.asarray(y).reshape(scores.shape)
        got = sklearn.accuracy_score(t, (scores > 0).astype(t.dtype), sample_weight=w)
    else:
        got = sklearn.r2_score(y, model.predict(X), sample_weight=w)
    assert model.score(X, y, sample_weight=w) == pytest.approx(got, rel=1e-12)


# --------------------------------------------------------------------------- equivalences
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_weights_of_one_give_the_unweighted_bits(loss, activation, sizes, dtype):
    rng = np.random.default_rng(4)
    X, y = ref.make_data(loss, 50, sizes[0], sizes[-1], rng)
    kw = dict(epochs=3, batch_size=8, optimizer="adam", lr=0.01, seed=3, weight_decay=1e-3)
    a = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=1)
    b = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=1)
    ha = a.fit(X, y, validation_data=(X[:9], y[:9]), **kw)
    hb = b.fit(X, y, sample_weight=np.ones(50), validation_data=(X[:9], y[:9], np.ones(9)), **kw)
    assert ref.same_bits(a, b)
    assert ha == hb


@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_weight_two_is_the_row_written_twice(loss, activation, sizes):
    # Full-batch gradient descent: one batch, the same rows; the sums differ in order only.
    rng = np.random.default_rng(5)
    X, y = ref.make_data(loss, 30, sizes[0], sizes[-1], rng)
    twice = np.array([2, 7, 11, 19])
    w = np.ones(30)
    w[twice] = 2.0
    kw = dict(epochs=5, batch_size=64, shuffle=False, optimizer="sgd", lr=0.1, momentum=0.5)
    a = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=2)
    b = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=2)
    ha = a.fit(X, y, sample_weight=w, weight_decay=1e-2, **kw)
    rows = np.concatenate([np.arange(30), twice])
    hb = b.fit(X[rows], y[rows], weight_decay=1e-2, **kw)
    assert_params_close(a, ref.params_of(b), rtol=1e-12, atol=1e-14)
    # The epoch loss is the batch's weighted mean (here, of the one batch).
    np.testing.assert_allclose(ha["loss"], hb["loss"], rtol=1e-12)


def test_a_batch_of_zero_weights_is_skipped():
    # Rows 0..9 weigh 0 and make the first two batches: the fit is the fit on rows 10.. alone
    # (the optimizer's step count included), bit for bit.
    rng = np.random.default_rng(6)
    X, y = ref.make_data("softmax", 40, 5, 3, rng)
    w = np.ones(40)
    w[:10] = 0.0
    kw = dict(epochs=3, batch_size=5, shuffle=False, optimizer="adam", lr=0.01)
    a = mlpfast.MLP([5, 7, 3], dtype="float64", seed=4)
    b = mlpfast.MLP([5, 7, 3], dtype="float64", seed=4)
    ha = a.fit(X, y, sample_weight=w, **kw)
    hb = b.fit(X[10:], y[10:], **kw)
    assert ref.same_bits(a, b)
    # The skipped batches add nothing to the epoch's loss, which is per row of the data.
    np.testing.assert_allclose(np.array(ha["loss"]) * 40, np.array(hb["loss"]) * 30, rtol=1e-13)


@pytest.mark.parametrize("shuffle", [False, True])
def test_weighted_fits_are_bit_identical_for_any_thread_count(shuffle):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((3000, 40)).astype(np.float32)
    y = rng.integers(0, 5, 3000)
    w = rng.uniform(0.0, 2.0, 3000)
    runs = []
    before = mlpfast.get_num_threads()
    try:
        for threads in (1, 2, 3):
            mlpfast.set_num_threads(threads)
            m = mlpfast.MLP([40, 64, 32, 5], seed=8)
            m.fit(X, y, sample_weight=w, epochs=2, batch_size=500, shuffle=shuffle, seed=1)
            runs.append(m)
    finally:
        mlpfast.set_num_threads(before)
    assert ref.same_bits(runs[0], runs[1]) and ref.same_bits(runs[0], runs[2])


def test_pandas_and_list_weights_are_accepted():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(8)
    X, y = ref.make_data("softmax", 20, 5, 3, rng)
    w = rng.uniform(0.5, 1.5, 20)
    kw = dict(epochs=2, batch_size=7, seed=0)
    a, b, c = (mlpfast.MLP([5, 4, 3], seed=1) for _ in range(3))
    a.fit(X, y, sample_weight=w, **kw)
    b.fit(X, y, sample_weight=pd.Series(w), **kw)
    c.fit(X, y, sample_weight=list(w), **kw)
    assert ref.same_bits(a, b) and ref.same_bits(a, c)


# --------------------------------------------------------------------------- refusals
BAD_WEIGHTS = [
    (np.ones(19), ValueError, r"sample_weight: expected shape \(20,\), got \(19,\)"),
    (np.ones((20, 1)), ValueError, r"sample_weight: expected shape \(20,\), got \(20, 1\)"),
    (-np.ones(20), ValueError, r"sample_weight: expected finite values >= 0, got -1"),
    (np.zeros(20), ValueError, r"sample_weight: expected at least one weight > 0, got all zeros"),
    (np.full(20, np.nan), ValueError, r"sample_weight: expected finite values >= 0, got NaN"),
    (np.full(20, np.inf), ValueError, r"sample_weight: expected finite values >= 0, got inf"),
    (np.full(20, 1e39), ValueError, r"sample_weight: expected finite values >= 0, got inf"),
    (np.array(["a"] * 20), TypeError, r"sample_weight: expected an integer or float array"),
    ("heavy", TypeError, r"sample_weight: expected a numeric array, got a string"),
]


@pytest.mark.parametrize(("w", "exc", "match"), BAD_WEIGHTS)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_bad_weights_are_refused_before_any_work(w, exc, match):
    rng = np.random.default_rng(9)
    X, y = ref.make_data("softmax", 20, 5, 3, rng)
    m = mlpfast.MLP([5, 4, 3], seed=1)  # float32: 1e39 overflows to inf
    before = ref.params_of(m)
    with pytest.raises(exc, match=match):
        m.fit(X, y, sample_weight=w, epochs=2)
    assert all(
        np.array_equal(a, b) and np.array_equal(c, d)
        for (a, c), (b, d) in zip(before, ref.params_of(m))
    )
    assert m.history["loss"] == []
    with pytest.raises(exc, match=match):
        m.loss(X, y, sample_weight=w)
    with pytest.raises(exc, match=match):
        m.score(X, y, sample_weight=w)


def test_bad_validation_weights_and_tuples():
    rng = np.random.default_rng(10)
    X, y = ref.make_data("softmax", 20, 5, 3, rng)
    m = mlpfast.MLP([5, 4, 3], seed=1)
    with pytest.raises(ValueError, match=r"validation_data sample_weight: expected shape \(20,\)"):
        m.fit(X, y, validation_data=(X, y, np.ones(3)))
    with pytest.raises(ValueError, match="validation_data sample_weight: expected at least one"):
        m.fit(X, y, validation_data=(X, y, np.zeros(20)))
    for bad in [(X,), (X, y, None, None), X, "Xy"]:
        with pytest.raises(TypeError, match=r"validation_data: expected a tuple \(X, y\) or"):
            m.fit(X, y, validation_data=bad)
    # (X, y, None) is (X, y).
    a, b = mlpfast.MLP([5, 4, 3], seed=1), mlpfast.MLP([5, 4, 3], seed=1)
    assert a.fit(X, y, validation_data=(X, y, None), seed=0) == b.fit(
        X, y, validation_data=[X, y], seed=0
    )
