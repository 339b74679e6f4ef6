"""MLP semantics: structure, initialisation, live parameters, forward/backward, fit, predict."""

from __future__ import annotations

import inspect

import numpy as np
import numpy_reference as ref
import pytest
from sklearn.metrics import r2_score

import mlpfast
from mlpfast import _core

ACT_CLASSES = {
    "identity": mlpfast.Identity,
    "sigmoid": mlpfast.Sigmoid,
    "tanh": mlpfast.Tanh,
    "relu": mlpfast.ReLU,
    "leaky_relu": mlpfast.LeakyReLU,
    "elu": mlpfast.ELU,
}


def weights(model):
    """Copies of (weight, bias) of every parameter layer."""
    return [(lay.weight.copy(), lay.bias.copy()) for lay in model.layers if hasattr(lay, "weight")]


def blobs(rng, n=300, k=3, d=2, spread=0.4):
    """An easy, well-separated classification problem: k Gaussian blobs."""
    centers = 3.0 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + spread * rng.standard_normal((n, d)), y


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("activation", list(ACT_CLASSES))
def test_layers_structure(activation):
    model = mlpfast.MLP([4, 6, 5, 3], activation=activation, seed=0)
    kinds = [type(lay) for lay in model.layers]
    act = ACT_CLASSES[activation]
    assert kinds == [mlpfast.Linear, act, mlpfast.Linear, act, mlpfast.Linear]
    linears = model.layers[::2]
    assert [(lay.in_features, lay.out_features) for lay in linears] == [(4, 6), (6, 5), (5, 3)]
    assert model.layer_sizes == [4, 6, 5, 3]
    assert model.activation == activation
    assert model.loss_name == "softmax"  # default loss
    assert model.dtype == "float32"  # default dtype


def test_maxout_structure():
    model = mlpfast.MLP([4, 6, 5, 3], activation="maxout", loss="svm", dtype="float64", seed=0)
    kinds = [type(lay) for lay in model.layers]
    assert kinds == [mlpfast.Maxout, mlpfast.Maxout, mlpfast.Linear]
    assert model.layers[0].weight.shape[1:] == (4, 6)
    assert model.layers[1].weight.shape[1:] == (6, 5)
    assert model.layers[2].weight.shape == (5, 3)
    assert model.loss_name == "svm" and model.dtype == "float64"


def test_single_layer_model():
    # [in, out]: just one Linear, no activation.
    model = mlpfast.MLP([4, 3], seed=0)
    assert [type(lay) for lay in model.layers] == [mlpfast.Linear]


# --------------------------------------------------------------------------- initialisation
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "elu", "maxout"])
def test_he_normal_init(activation):
    # Hidden layers feed a relu-family/maxout unit: He normal, std sqrt(2 / fan_in).
    model = mlpfast.MLP([400, 300, 200, 100], activation=activation, dtype="float64", seed=1)
    params = [lay for lay in model.layers if hasattr(lay, "weight")]
    for lay in params[:-1]:
        fan_in = lay.weight.shape[-2]
        std = np.sqrt(2.0 / fan_in)
        w = lay.weight.ravel()
        assert abs(w.std() / std - 1.0) < 0.05
        assert abs(w.mean()) < 4 * std / np.sqrt(w.size)
        # Normal, not uniform: about 4.6% of draws beyond 2 standard deviations.
        assert 0.03 < np.mean(np.abs(w) > 2 * std) < 0.06
        np.testing.assert_array_equal(lay.bias, 0.0)
    # The output Linear has no activation after it (identity), hence Glorot uniform
    # (the README's rule: "Glorot for sigmoid, tanh and identity").
    out = params[-1]
    bound = np.sqrt(6.0 / sum(out.weight.shape))
    assert np.max(np.abs(out.weight)) <= bound
    np.testing.assert_array_equal(out.bias, 0.0)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "identity"])
def test_glorot_uniform_init(activation):
    model = mlpfast.MLP([400, 300, 200], activation=activation, dtype="float64", seed=1)
    for lay in model.layers[::2]:
        fan_in, fan_out = lay.weight.shape
        bound = np.sqrt(6.0 / (fan_in + fan_out))
        w = lay.weight.ravel()
        assert np.max(np.abs(w)) <= bound
        assert np.max(np.abs(w)) > 0.99 * bound  # fills the interval
        assert abs(w.std() / (bound / np.sqrt(3.0)) - 1.0) < 0.05
        np.testing.assert_array_equal(lay.bias, 0.0)


def test_seeds():
    a = weights(mlpfast.MLP([5, 7, 3], seed=3))
    b = weights(mlpfast.MLP([5, 7, 3], seed=3))
    c = weights(mlpfast.MLP([5, 7, 3], seed=4))
    d = weights(mlpfast.MLP([5, 7, 3]))  # seed=None: fresh entropy
    for (wa, _), (wb, _) in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
    assert not np.array_equal(a[0][0], c[0][0])
    assert not np.array_equal(a[0][0], d[0][0])


# --------------------------------------------------------------------------- live parameters
@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_forward_matches_numpy(rng, activation):
    model = mlpfast.MLP([4, 6, 5, 3], activation=activation, dtype="float64", seed=0)
    X = rng.standard_normal((9, 4))
    expected, _ = ref.forward(ref.params_of(model), activation, X)
    np.testing.assert_allclose(model.forward(X), expected, rtol=1e-12, atol=1e-14)


def test_assigning_weight_changes_model(rng):
    model = mlpfast.MLP([4, 6, 3], activation="tanh", dtype="float64", seed=0)
    X = rng.standard_normal((9, 4))
    before = model.predict_proba(X)
    new_w = rng.standard_normal((4, 6))
    model.layers[0].weight = new_w
    model.layers[2].bias = [1.0, -1.0, 0.5]
    np.testing.assert_array_equal(model.layers[0].weight, new_w)
    expected, _ = ref.forward(ref.params_of(model), "tanh", X)
    assert ref.params_of(model)[1][1].tolist() == [1.0, -1.0, 0.5]
    np.testing.assert_allclose(model.forward(X), expected, rtol=1e-12, atol=1e-14)
    assert not np.allclose(model.predict_proba(X), before)


def test_writing_into_weight_view_changes_model(rng):
    model = mlpfast.MLP([4, 6, 3], activation="relu", dtype="float64", seed=0)
    X = rng.standard_normal((9, 4))
    params = ref.params_of(model)
    model.layers[0].weight[...] *= 2.0  # in place, through the view
    model.layers[2].weight[0, 0] = 7.0
    params[0] = (params[0][0] * 2.0, params[0][1])
    params[1][0][0, 0] = 7.0
    expected, _ = ref.forward(params, "relu", X)
    np.testing.assert_allclose(model.forward(X), expected, rtol=1e-12, atol=1e-14)


def test_views_stay_live_through_fit(rng):
    # A view taken before fit sees the trained weights: the layers ARE the parameters.
    model = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
    w = model.layers[0].weight
    before = w.copy()
    X, y = blobs(rng, n=40, d=4)
    model.fit(X, y, epochs=2, lr=0.1, seed=0)
    assert not np.array_equal(model.layers[0].weight, before)
    np.testing.assert_array_equal(w, model.layers[0].weight)


# --------------------------------------------------------------------------- forward/backward
@pytest.mark.parametrize(
    ("loss", "fn", "k"),
    [
        ("softmax", mlpfast.softmax_loss, 3),
        ("svm", mlpfast.svm_loss, 3),
        ("mse", mlpfast.mse_loss, 2),
        ("bce", mlpfast.bce_loss, 1),
    ],
)
@pytest.mark.parametrize("activation", ["tanh", "relu", "maxout"])
def test_forward_backward_fill_grads_like_loss(rng, loss, fn, k, activation):
    model = mlpfast.MLP([4, 6, 5, k], activation=activation, loss=loss, dtype="float64", seed=0)
    X, y = ref.make_data(loss, 8, 4, k, rng)
    value, grads = model.loss(X, y)
    scores = model.forward(X)
    value2, dscores = fn(scores, y.reshape(scores.shape) if loss == "bce" else y)
    assert value2 == pytest.approx(value, rel=1e-14)
    dX = model.backward(dscores)
    assert dX.shape == X.shape
    # dX against the numpy reference backward.
    params = ref.params_of(model)
    ref_scores, cache = ref.forward(params, activation, X)
    _, ref_dX = ref.backward(params, activation, cache, ref.loss_fn(loss, ref_scores, y)[1])
    np.testing.assert_allclose(dX, ref_dX, rtol=1e-10, atol=1e-14)
    player = [lay for lay in model.layers if hasattr(lay, "weight")]
    assert len(player) == len(grads)
    for lay, (gw, gb) in zip(player, grads):
        np.testing.assert_allclose(lay.grad_weight, gw, rtol=1e-13, atol=1e-15)
        np.testing.assert_allclose(lay.grad_bias, gb, rtol=1e-13, atol=1e-15)


def test_loss_is_data_loss_only(rng):
    # MLP.loss has no weight decay term: it equals the loss function on forward's scores.
    model = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
    X, y = ref.make_data("softmax", 8, 4, 3, rng)
    assert model.loss(X, y)[0] == pytest.approx(ref.softmax_loss(model.forward(X), y)[0], rel=1e-13)


# --------------------------------------------------------------------------- fit
def test_fit_continues_from_current_weights(rng):
    X, y = blobs(rng, n=50, d=4)
    kw = {"batch_size": 8, "lr": 0.05, "shuffle": False}
    a = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
    b = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
    h1 = a.fit(X, y, epochs=1, seed=1, **kw)
    h2 = a.fit(X, y, epochs=1, seed=2, **kw)
    hb = b.fit(X, y, epochs=2, seed=1, **kw)
    # Plain SGD, lr_decay 1, no shuffle: two 1-epoch fits == one 2-epoch fit, bit for bit.
    assert h1["loss"] + h2["loss"] == hb["loss"]
    for (wa, ba), (wb, bb) in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_fit_learns_separable_problem(rng, optimizer):
    X, y = blobs(rng)
    model = mlpfast.MLP([2, 16, 3], seed=0)
    lr = 0.1 if optimizer == "sgd" else 0.01
    history = model.fit(X, y, epochs=30, batch_size=32, optimizer=optimizer, lr=lr, seed=0)
    assert len(history["loss"]) == 30
    assert all(isinstance(v, float) for v in history["loss"])
    assert history["loss"][-1] < 0.5 * history["loss"][0]
    assert model.score(X, y) > 0.9


def test_fit_learns_regression(rng):
    X = rng.standard_normal((200, 3))
    Y = np.stack([X @ [1.0, -2.0, 0.5], np.sin(X[:, 0])], axis=1)
    model = mlpfast.MLP([3, 32, 2], activation="tanh", loss="mse", seed=0)
    history = model.fit(X, Y, epochs=60, batch_size=20, optimizer="adam", lr=0.01, seed=0)
    assert history["loss"][-1] < 0.2 * history["loss"][0]
    assert model.score(X, Y) > 0.9


def test_fit_learns_binary(rng):
    X, y = blobs(rng, k=2)
    model = mlpfast.MLP([2, 8, 1], activation="elu", loss="bce", seed=0)
    model.fit(X, y, epochs=20, batch_size=16, lr=0.1, seed=0)
    assert model.score(X, y) > 0.9


def test_epochs_zero(rng):
    X, y = blobs(rng, n=20, d=4)
    model = mlpfast.MLP([4, 6, 3], seed=0)
    snap = weights(model)
    h = model.fit(X, y, epochs=0, validation_data=(X, y))
    assert h["loss"] == [] and h["val_loss"] == [] and h["val_accuracy"] == []
    for (w0, b0), (w1, b1) in zip(snap, weights(model)):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)


def test_fit_signature_states_the_core_defaults():
    # help(MLP.fit) and the stub show the defaults the core's FitConfig applies, and no
    # private keyword.
    params = inspect.signature(mlpfast.MLP.fit).parameters
    shown = {
        name: p.default
        for name, p in params.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
        and name not in ("sample_weight", "validation_data", "verbose", "callbacks")
    }
    assert shown == _core._fit_defaults()
    assert not any(name.startswith("_") for name in params)
    assert "Ellipsis" not in str(inspect.signature(mlpfast.MLP.fit))


def test_fit_keyword_errors_name_the_keyword(rng):
    X, y = blobs(rng, n=20, d=4)
    model = mlpfast.MLP([4, 6, 3], seed=0)
    snap = weights(model)
    with pytest.raises(TypeError, match="unexpected keyword argument 'learning_rate'"):
        model.fit(X, y, learning_rate=0.1)
    with pytest.raises(TypeError, match=r"^epochs: expected an int in \[0, 2\*\*63\), got 2\.5"):
        model.fit(X, y, epochs=2.5)
    with pytest.raises(TypeError, match="argument 'betas'"):
        model.fit(X, y, betas=0.9)
    # Out-of-range ints are ValueErrors naming the argument and the value (not OverflowError).
    seed_range = r"^seed: expected an int in \[0, 2\*\*64\) or None, got -1"
    with pytest.raises(ValueError, match=seed_range):
        model.fit(X, y, seed=-1)
    epochs_range = rf"^epochs: expected an int in \[0, 2\*\*63\), got {2**70}"
    with pytest.raises(ValueError, match=epochs_range) as e:
        model.fit(X, y, epochs=2**70)
    assert e.value.arg == "epochs"
    with pytest.raises(ValueError, match=r"^batch_size: .*got 9223372036854775808"):
        model.fit(X, y, batch_size=2**63)
    with pytest.raises(TypeError, match=r"^seed: .*got True"):
        model.fit(X, y, seed=True)
    for (w0, b0), (w1, b1) in zip(snap, weights(model)):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)


def test_verbose_prints_one_line_per_epoch(rng, capsys):
    X, y = blobs(rng, n=20, d=4)
    model = mlpfast.MLP([4, 6, 3], seed=0)
    model.fit(X, y, epochs=3, seed=0)
    assert capsys.readouterr().out == ""  # silent by default
    model.fit(X, y, epochs=3, seed=0, verbose=True)
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    assert len(lines) == 3
    for epoch, line in enumerate(lines, start=1):
        assert str(epoch) in line


def test_fit_seed_none_uses_model_generator(rng):
    # Two models with the same seed, shuffled fits with seed=None: identical results.
    X, y = blobs(rng, n=40, d=4)
    a = mlpfast.MLP([4, 6, 3], dtype="float64", seed=9)
    b = mlpfast.MLP([4, 6, 3], dtype="float64", seed=9)
    ha = a.fit(X, y, epochs=2, batch_size=7, lr=0.1)
    hb = b.fit(X, y, epochs=2, batch_size=7, lr=0.1)
    assert ha == hb
    for (wa, _), (wb, _) in zip(weights(a), weights(b)):
        np.testing.assert_array_equal(wa, wb)


def test_shuffle_changes_batches(rng):
    # With shuffle=True the result depends on the fit seed; with shuffle=False it does not.
    X, y = blobs(rng, n=40, d=4)
    runs = {}
    for shuffle in (True, False):
        for seed in (1, 2):
            m = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
            m.fit(X, y, epochs=2, batch_size=7, lr=0.1, shuffle=shuffle, seed=seed)
            runs[shuffle, seed] = weights(m)[0][0]
    assert not np.array_equal(runs[True, 1], runs[True, 2])
    np.testing.assert_array_equal(runs[False, 1], runs[False, 2])


def test_batch_larger_than_n(rng):
    X, y = blobs(rng, n=10, d=4)
    model = mlpfast.MLP([4, 6, 3], seed=0)
    h = model.fit(X, y, epochs=2, batch_size=1000)
    assert len(h["loss"]) == 2


# --------------------------------------------------------------------------- predict & co
def test_predict_softmax(rng):
    model = mlpfast.MLP([4, 6, 3], dtype="float64", seed=0)
    X, y = ref.make_data("softmax", 30, 4, 3, rng)
    scores = model.forward(X)
    pred = model.predict(X)
    assert pred.dtype == np.int64 and pred.shape == (30,)
    np.testing.assert_array_equal(pred, np.argmax(scores, axis=1))
    proba = model.predict_proba(X)
    assert proba.shape == (30, 3) and proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    e = np.exp(scores - scores.max(axis=1, keepdims=True))
    np.testing.assert_allclose(proba, e / e.sum(axis=1, keepdims=True), rtol=1e-13)
    assert model.score(X, y) == pytest.approx(np.mean(pred == y), abs=1e-15)


def test_predict_proba_float32_rows_sum_to_one(rng):
    model = mlpfast.MLP([4, 6, 5], seed=0)
    proba = model.predict_proba(rng.standard_normal((10, 4)))
    assert proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert np.all(proba >= 0)


def test_predict_svm(rng):
    model = mlpfast.MLP([4, 6, 3], loss="svm", dtype="float64", seed=0)
    X, y = ref.make_data("svm", 30, 4, 3, rng)
    pred = model.predict(X)
    assert pred.dtype == np.int64
    np.testing.assert_array_equal(pred, np.argmax(model.forward(X), axis=1))
    assert model.score(X, y) == pytest.approx(np.mean(pred == y), abs=1e-15)


def test_predict_bce_single_output(rng):
    model = mlpfast.MLP([4, 6, 1], loss="bce", dtype="float64", seed=0)
    X, y = ref.make_data("bce", 30, 4, 1, rng)
    z = model.forward(X)[:, 0]
    pred = model.predict(X)
    assert pred.dtype == np.int64 and pred.shape == (30,)
    np.testing.assert_array_equal(pred, (z > 0).astype(np.int64))
    proba = model.predict_proba(X)
    assert proba.shape == (30, 2)
    p = 1.0 / (1.0 + np.exp(-z))
    np.testing.assert_allclose(proba[:, 1], p, rtol=1e-13)
    np.testing.assert_allclose(proba[:, 0], 1.0 - p, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-14)
    assert model.score(X, y) == pytest.approx(np.mean(pred == y), abs=1e-15)


def test_predict_mse(rng):
    model = mlpfast.MLP([4, 6, 2], loss="mse", activation="tanh", dtype="float64", seed=0)
    X, Y = ref.make_data("mse", 30, 4, 2, rng)
    pred = model.predict(X)
    assert pred.dtype == np.float64 and pred.shape == (30, 2)
    np.testing.assert_array_equal(pred, model.forward(X))
    assert model.score(X, Y) == pytest.approx(r2_score(Y, pred), rel=1e-12)
    # A perfect predictor scores 1.
    assert model.score(X, pred) == pytest.approx(1.0)


def test_validation_history_keys(rng):
    X, y = ref.make_data("mse", 30, 4, 2, rng)
    model = mlpfast.MLP([4, 6, 2], loss="mse", seed=0)
    h = model.fit(X, y, epochs=2, validation_data=(X[:10], y[:10]))
    assert set(h) == {"loss", "val_loss", "val_r2"}
    X, y = ref.make_data("softmax", 30, 4, 3, rng)
    model = mlpfast.MLP([4, 6, 3], seed=0)
    h = model.fit(X, y, epochs=2, validation_data=(X[:10], y[:10]))
    assert set(h) == {"loss", "val_loss", "val_accuracy"}
    assert all(0.0 <= v <= 1.0 for v in h["val_accuracy"])
