"""MLP(dropout=p): inverted dropout after every hidden activation while fitting.

The masks depend on (the fit's seed, the step, the row in the batch, the column) alone, so a
fit is reproduced in plain numpy (tests/numpy_reference.py draws the same masks from the
written description of the hash) to 1e-10 in float64, and is bit-identical for any thread
count; predictions, scores and the validation pass never drop.
"""

from __future__ import annotations

import pickle

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast

N, N_VAL, BATCH, EPOCHS = 23, 9, 5, 4
MODELS = [
    ("softmax", "relu", [5, 8, 6, 3]),
    ("mse", "tanh", [5, 7, 2]),
    ("bce", "sigmoid", [5, 6, 1]),
    ("svm", "leaky_relu", [5, 8, 4]),
    ("huber", "elu", [5, 6, 2]),
    ("softmax", "maxout", [5, 6, 3]),
    ("poisson", "identity", [5, 6, 2]),
]
IDS = [f"{m[0]}-{m[1]}" for m in MODELS]
OPTIMIZERS = {
    "nesterov": {"optimizer": "sgd", "lr": 0.03, "momentum": 0.8, "nesterov": True},
    "adam": {"optimizer": "adam", "lr": 0.01, "betas": (0.85, 0.99), "eps": 1e-3},
}


def setup(loss, activation, sizes, p, seed=0):
    rng = np.random.default_rng(seed + 500)
    model = mlpfast.MLP(
        sizes, activation=activation, loss=loss, dtype="float64", seed=seed, dropout=p
    )
    X, y = ref.make_data(loss, N + N_VAL, sizes[0], sizes[-1], rng)
    return model, (X[:N], y[:N]), (X[N:], y[N:])


@pytest.mark.parametrize("opt", list(OPTIMIZERS))
@pytest.mark.parametrize(("loss", "activation", "sizes"), MODELS, ids=IDS)
def test_fit_with_dropout_matches_numpy(loss, activation, sizes, opt):
    p = 0.3
    model, (X, y), (Xv, yv) = setup(loss, activation, sizes, p)
    start = ref.params_of(model)
    settings = {**OPTIMIZERS[opt], "weight_decay": 1e-2}
    history = model.fit(
        X,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=False,
        seed=1234,
        validation_data=(Xv, yv),
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
        validation_data=(Xv, yv),
        dropout=p,
        seed=1234,
        **settings,
    )
    for (gw, gb), (rw, rb) in zip(ref.params_of(model), params):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-13)
    for key in history:
        np.testing.assert_allclose(history[key], expected[key], rtol=1e-10, atol=1e-13)


def test_the_layers_list_dropout_and_switch_modes_together():
    m = mlpfast.MLP([4, 8, 8, 3], dropout=0.25, seed=0)
    kinds = [type(layer).__name__ for layer in m.layers]
    assert kinds == ["Linear", "ReLU", "Dropout", "Linear", "ReLU", "Dropout", "Linear"]
    assert all(layer.p == 0.25 for layer in m.layers if isinstance(layer, mlpfast.Dropout))
    assert [type(layer).__name__ for layer in mlpfast.MLP([4, 8, 3]).layers] == [
        "Linear",
        "ReLU",
        "Linear",
    ]
    assert all(layer.training for layer in m.layers)
    m.eval()
    assert not any(layer.training for layer in m.layers)
    m.train(False)
    assert not m.training
    m.train()
    assert all(layer.training for layer in m.layers)
    with pytest.raises(TypeError, match=r"mode: expected a bool, got 1 \(int\)"):
        m.train(1)
    assert m.training
    # The layer chain's backward goes through the same masks as its forward (tanh: no kinks
    # for the finite differences to straddle).
    x = np.random.default_rng(0).standard_normal((6, 4))
    model = mlpfast.MLP([4, 8, 3], activation="tanh", dropout=0.5, dtype="float64", seed=1)
    from mlpfast.gradcheck import check_model

    errors = check_model(model, x, np.array([0, 1, 2, 0, 1, 2]))
    assert max(errors.values()) < 1e-7, errors


def test_dropout_changes_training_and_a_rate_of_zero_does_not():
    rng = np.random.default_rng(1)
    X, y = ref.make_data("softmax", 60, 5, 3, rng)
    kw = dict(epochs=3, batch_size=10, seed=2)
    plain, zero, dropped = (
        mlpfast.MLP([5, 16, 3], seed=0, dropout=p, dtype="float64") for p in (0.0, 0.0, 0.5)
    )
    plain.fit(X, y, **kw)
    zero.fit(X, y, **kw)
    dropped.fit(X, y, **kw)
    assert ref.same_bits(plain, zero)
    assert not ref.same_bits(plain, dropped)


def test_the_masks_follow_the_seed():
    rng = np.random.default_rng(2)
    X, y = ref.make_data("softmax", 60, 5, 3, rng)
    a, b, c = (mlpfast.MLP([5, 16, 3], seed=0, dropout=0.5) for _ in range(3))
    a.fit(X, y, epochs=2, batch_size=10, seed=7)
    b.fit(X, y, epochs=2, batch_size=10, seed=7)
    c.fit(X, y, epochs=2, batch_size=10, seed=8)
    assert ref.same_bits(a, b) and not ref.same_bits(a, c)


def test_predictions_scores_and_validation_never_drop():
    rng = np.random.default_rng(3)
    X, y = ref.make_data("softmax", 50, 5, 3, rng)
    m = mlpfast.MLP([5, 16, 16, 3], seed=0, dropout=0.6, dtype="float64")
    h = m.fit(X, y, epochs=2, batch_size=10, seed=1, validation_data=(X, y))
    twin = mlpfast.MLP([5, 16, 16, 3], seed=0, dtype="float64")
    for a, b in zip(twin.param_layers, m.param_layers):
        a.weight, a.bias = b.weight, b.bias
    # The layer API's forward drops in training mode (the default), not in evaluation mode.
    assert m.training and not np.array_equal(m.forward(X), twin.forward(X))
    assert m.eval() is m and not m.training
    np.testing.assert_array_equal(m.forward(X), twin.forward(X))
    m.train()
    np.testing.assert_array_equal(m.predict_proba(X), twin.predict_proba(X))
    assert m.score(X, y) == twin.score(X, y)
    # The last epoch's validation figures are the final weights' evaluation, undropped.
    assert h["val_loss"][-1] == pytest.approx(twin.loss(X, y)[0], rel=1e-12)
    assert h["val_accuracy"][-1] == twin.score(X, y)
    # Repeated predictions agree: no mask is drawn.
    np.testing.assert_array_equal(m.predict_proba(X), m.predict_proba(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout"])
def test_fits_with_dropout_are_bit_identical_for_any_thread_count(dtype, activation):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((3000, 40)).astype(dtype)
    y = rng.integers(0, 5, 3000)
    runs = []
    before = mlpfast.get_num_threads()
    try:
        for threads in (1, 2, 3):
            mlpfast.set_num_threads(threads)
            m = mlpfast.MLP([40, 64, 32, 5], activation=activation, seed=8, dtype=dtype,
                            dropout=0.25)  # fmt: skip
            m.fit(X, y, epochs=2, batch_size=500, seed=1, optimizer="adam", lr=1e-3)
            runs.append(m)
    finally:
        mlpfast.set_num_threads(before)
    assert ref.same_bits(runs[0], runs[1]) and ref.same_bits(runs[0], runs[2])


def test_the_kept_units_are_scaled_and_their_rate_is_one_minus_p():
    # The reference's masks (checked against the fit above) keep 1 - p of the units, each
    # scaled by 1/(1 - p): the layer's expected output is its input.
    for p in (0.2, 0.5, 0.8):
        mask = ref.dropout_mask(p, 3, 5, 0, 500, 400)
        n = mask.size
        sd = np.sqrt(n * p * (1 - p))
        assert abs(mask.sum() - n * (1 - p)) < 5 * sd
        assert abs((mask / (1 - p)).mean() - 1.0) < 5 * sd / (n * (1 - p))
    # Another step, block or seed: another mask.
    base = ref.dropout_mask(0.5, 3, 5, 0, 50, 40)
    for other in (
        ref.dropout_mask(0.5, 3, 6, 0, 50, 40),
        ref.dropout_mask(0.5, 3, 5, 1, 50, 40),
        ref.dropout_mask(0.5, 4, 5, 0, 50, 40),
    ):
        assert 0.3 < np.mean(base != other) < 0.7


@pytest.mark.parametrize(
    ("value", "exc", "match"),
    [
        (-0.1, ValueError, r"dropout: expected a rate in \[0, 1\), got -0\.1"),
        (1.0, ValueError, r"dropout: expected a rate in \[0, 1\), got 1"),
        (float("nan"), ValueError, r"dropout: expected a rate in \[0, 1\), got NaN"),
        ("half", TypeError, r"dropout: expected a rate in \[0, 1\), got 'half'"),
    ],
)
def test_bad_rates_are_refused(value, exc, match):
    with pytest.raises(exc, match=match):
        mlpfast.MLP([3, 4, 2], dropout=value)


def test_pickle_and_model_files_keep_the_rate(tmp_path):
    rng = np.random.default_rng(5)
    X, y = ref.make_data("softmax", 40, 5, 3, rng)
    m = mlpfast.MLP([5, 8, 3], seed=0, dropout=0.4, dtype="float64")
    m.fit(X, y, epochs=2, batch_size=8, seed=3, optimizer="adam")
    again = pickle.loads(pickle.dumps(m))
    mlpfast.save(m, tmp_path / "m.safetensors")
    loaded = mlpfast.load(tmp_path / "m.safetensors")
    assert again.dropout == loaded.dropout == 0.4
    assert pickle.loads(pickle.dumps(m.eval())).training is False
    m.train()
    assert ref.same_bits(m, again) and ref.same_bits(m, loaded)
    # Training goes on identically from the pickle (session and masks alike).
    m.fit(X, y, epochs=2, batch_size=8, seed=4, optimizer="adam", resume=True)
    again.fit(X, y, epochs=2, batch_size=8, seed=4, optimizer="adam", resume=True)
    assert ref.same_bits(m, again)


# --------------------------------------------------------------------------- the estimators
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_the_estimators_take_dropout():
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_wine
    from sklearn.preprocessing import StandardScaler

    from mlpfast.sklearn import MLPClassifier, MLPRegressor

    X, y = load_wine(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(32,), max_iter=50, learning_rate_init=0.01, random_state=0)
    a = MLPClassifier(dropout=0.3, **kw).fit(X, y)
    b = MLPClassifier(dropout=0.3, **kw).fit(X, y)
    plain = MLPClassifier(**kw).fit(X, y)
    assert a._mlp.dropout == 0.3 and a.score(X, y) > 0.9
    # The masks follow random_state: the same fit twice, another without dropout.
    assert all(np.array_equal(p, q) for p, q in zip(a.coefs_, b.coefs_))
    assert not all(np.array_equal(p, q) for p, q in zip(a.coefs_, plain.coefs_))
    np.testing.assert_array_equal(a.predict_proba(X), a.predict_proba(X))
    reg = MLPRegressor(dropout=0.2, **kw).fit(X, X[:, 0])
    assert reg._mlp.dropout == 0.2
    with pytest.raises(
        ValueError, match=r"'dropout' parameter must be a float in the range \[0.0, 1.0\)"
    ):
        MLPClassifier(dropout=1.0).fit(X, y)
    # A warm start keeps the network's rate: another one is refused, naming both.
    a.set_params(warm_start=True, dropout=0.5)
    with pytest.raises(ValueError, match=r"dropout 0\.3 and batch_norm False; .* 0\.5, False"):
        a.fit(X, y)
