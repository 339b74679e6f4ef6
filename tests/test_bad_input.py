"""Bad input raises ValueError/TypeError naming the argument, and changes nothing.

Every case checks the exception type, that the message names the offending
argument (regex on the message), and that the model's or layer's weights are
bit-for-bit what they were before the call. A Rust panic would surface as
pyo3's PanicException (a BaseException), which these tests report as an error.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

import mlpfast

D, C, N = 4, 3, 10


def arg(name):
    """Regex matching ``name`` as a whole word in an error message."""
    return rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])"


def snapshot(obj):
    """Copies of every weight and bias of a model or layer."""
    layers = obj.layers if hasattr(obj, "layers") else [obj]
    return [(lay.weight.copy(), lay.bias.copy()) for lay in layers if hasattr(lay, "weight")]


def assert_unchanged(obj, snap):
    """The object's parameters equal the snapshot exactly."""
    now = snapshot(obj)
    assert len(now) == len(snap)
    for (w0, b0), (w1, b1) in zip(snap, now):
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)


@pytest.fixture
def data():
    """Valid softmax training data: X (N, D) float64, y (N,) int64 in [0, C)."""
    rng = np.random.default_rng(0)
    return rng.standard_normal((N, D)), rng.integers(0, C, N)


@pytest.fixture
def model():
    """A small float64 softmax model."""
    return mlpfast.MLP([D, 5, C], dtype="float64", seed=0)


def with_value(a, index, value, dtype=np.float64):
    """A copy of ``a`` as ``dtype`` with ``a[index] = value``."""
    out = np.array(a, dtype=dtype)
    out[index] = value
    return out


# --------------------------------------------------------------------------- fit: X and y
def _x_cases():
    X = np.random.default_rng(0).standard_normal((N, D))
    return [
        ("1d", X[0], ValueError),
        ("3d", X[None], ValueError),
        ("columns", np.ones((N, D + 1)), ValueError),
        ("nan", with_value(X, (3, 1), np.nan), ValueError),
        ("inf", with_value(X, (0, 0), np.inf), ValueError),
        ("-inf", with_value(X, (9, 3), -np.inf), ValueError),
        ("strings", np.full((N, D), "a"), TypeError),
        ("object", X.astype(object), TypeError),
        ("complex", X.astype(np.complex128), TypeError),
        ("none", None, TypeError),
    ]


X_CASES = _x_cases()


@pytest.mark.parametrize(("Xbad", "exc"), [c[1:] for c in X_CASES], ids=[c[0] for c in X_CASES])
@pytest.mark.parametrize("method", ["fit", "loss", "score", "predict", "predict_proba", "forward"])
def test_bad_x_argument(model, data, Xbad, exc, method):
    _, y = data
    snap = snapshot(model)
    call = {
        "fit": lambda: model.fit(Xbad, y, epochs=1),
        "loss": lambda: model.loss(Xbad, y),
        "score": lambda: model.score(Xbad, y),
        "predict": lambda: model.predict(Xbad),
        "predict_proba": lambda: model.predict_proba(Xbad),
        "forward": lambda: model.forward(Xbad),
    }[method]
    with pytest.raises(exc, match=arg("X")):
        call()
    assert_unchanged(model, snap)


def test_empty_x_argument(model):
    snap = snapshot(model)
    X0 = np.zeros((0, D))
    y0 = np.zeros(0, dtype=np.int64)
    for call in (
        lambda: model.fit(X0, y0, epochs=1),
        lambda: model.loss(X0, y0),
        lambda: model.predict(X0),
    ):
        with pytest.raises(ValueError, match=arg("X")):
            call()
    assert_unchanged(model, snap)


def _y_cases():
    y = np.random.default_rng(0).integers(0, C, N)
    return [
        ("fractional", with_value(y, 2, 1.5), ValueError),
        ("negative", with_value(y, 0, -1, np.int64), ValueError),
        ("equal-C", with_value(y, 5, C, np.int64), ValueError),
        ("huge", with_value(y, 5, 2**40, np.int64), ValueError),
        ("nan", with_value(y, 1, np.nan), ValueError),
        ("inf", with_value(y, 1, np.inf), ValueError),
        ("too-few-rows", y[:-1], ValueError),
        ("too-many-rows", np.concatenate([y, y[:1]]), ValueError),
        ("2d", np.stack([y, y], axis=1), ValueError),
        ("strings", y.astype(str), TypeError),
        ("complex", y.astype(np.complex128), TypeError),
        ("object", y.astype(object), TypeError),
    ]


Y_CASES = _y_cases()


@pytest.mark.parametrize(("ybad", "exc"), [c[1:] for c in Y_CASES], ids=[c[0] for c in Y_CASES])
@pytest.mark.parametrize("method", ["fit", "loss", "score"])
def test_bad_y(model, data, ybad, exc, method):
    X, _ = data
    snap = snapshot(model)
    call = {
        "fit": lambda: model.fit(X, ybad, epochs=1),
        "loss": lambda: model.loss(X, ybad),
        "score": lambda: model.score(X, ybad),
    }[method]
    with pytest.raises(exc, match=arg("y")):
        call()
    assert_unchanged(model, snap)


@pytest.mark.parametrize(
    "ybad",
    [
        np.ones((N, 3)),
        np.ones(N),
        with_value(np.ones((N, 2)), (4, 1), np.nan),
        np.full((N, 2), "x"),
    ],
    ids=["columns", "1d", "nan", "strings"],
)
def test_bad_mse_targets(data, ybad):
    X, _ = data
    model = mlpfast.MLP([D, 5, 2], loss="mse", dtype="float64", seed=0)
    snap = snapshot(model)
    exc = TypeError if ybad.dtype.kind == "U" else ValueError
    with pytest.raises(exc, match=arg("y")):
        model.fit(X, ybad, epochs=1)
    with pytest.raises(exc, match=arg("y")):
        model.loss(X, ybad)
    assert_unchanged(model, snap)


@pytest.mark.parametrize("value", [0.5, 2.0, -1.0, np.nan])
def test_bad_bce_targets(data, value):
    X, _ = data
    model = mlpfast.MLP([D, 5, 1], loss="bce", dtype="float64", seed=0)
    snap = snapshot(model)
    ybad = with_value(np.zeros(N), 3, value)
    with pytest.raises(ValueError, match=arg("y")):
        model.fit(X, ybad, epochs=1)
    with pytest.raises(ValueError, match=arg("y")):
        model.loss(X, ybad)
    assert_unchanged(model, snap)


# --------------------------------------------------------------------------- fit: settings
FIT_SETTINGS = [
    ("batch_size", {"batch_size": 0}, ValueError),
    ("batch_size", {"batch_size": -1}, ValueError),
    ("epochs", {"epochs": -1}, ValueError),
    ("lr", {"lr": 0.0}, ValueError),
    ("lr", {"lr": -1.0}, ValueError),
    ("lr", {"lr": float("nan")}, ValueError),
    ("lr", {"lr": float("inf")}, ValueError),
    ("momentum", {"momentum": -0.1}, ValueError),
    ("momentum", {"momentum": 1.0}, ValueError),
    ("momentum", {"momentum": 1.5}, ValueError),
    ("momentum", {"momentum": float("nan")}, ValueError),
    ("nesterov", {"nesterov": True, "momentum": 0.0}, ValueError),
    ("optimizer", {"optimizer": "adagrad"}, ValueError),
    ("alpha", {"optimizer": "rmsprop", "alpha": 1.0}, ValueError),
    ("alpha", {"optimizer": "rmsprop", "alpha": -0.1}, ValueError),
    ("alpha", {"alpha": float("nan")}, ValueError),
    ("alpha", {"alpha": "0.9"}, TypeError),
    ("eps", {"optimizer": "rmsprop", "eps": 0.0}, ValueError),
    ("clip_grad_norm", {"clip_grad_norm": 0.0}, ValueError),
    ("clip_grad_norm", {"clip_grad_norm": -1.0}, ValueError),
    ("clip_grad_norm", {"clip_grad_norm": float("inf")}, ValueError),
    ("clip_grad_norm", {"clip_grad_norm": float("nan")}, ValueError),
    ("clip_grad_norm", {"clip_grad_norm": "1"}, TypeError),
    ("lr_min", {"lr_min": -0.1}, ValueError),
    ("lr_min", {"lr": 0.01, "lr_min": 0.01}, ValueError),
    ("lr_min", {"lr_min": float("nan")}, ValueError),
    ("warmup_epochs", {"warmup_epochs": -1}, ValueError),
    ("warmup_epochs", {"warmup_epochs": 1.5}, TypeError),
    ("warmup_epochs", {"schedule": "cosine", "warmup_epochs": 2}, ValueError),
    ("lr_decay", {"schedule": "cosine", "lr_decay": 0.9}, ValueError),
    ("schedule", {"schedule": "cyclic"}, ValueError),
    ("optimizer", {"optimizer": ""}, ValueError),
    ("weight_decay", {"weight_decay": -0.1}, ValueError),
    ("weight_decay", {"weight_decay": float("nan")}, ValueError),
    ("lr_decay", {"lr_decay": 0.0}, ValueError),
    ("lr_decay", {"lr_decay": -0.5}, ValueError),
    ("beta", {"optimizer": "adam", "betas": (1.0, 0.999)}, ValueError),
    ("beta", {"optimizer": "adam", "betas": (0.9, -0.1)}, ValueError),
    ("eps", {"optimizer": "adam", "eps": 0.0}, ValueError),
    (
        "validation_data",
        {"validation_data": (np.ones((3, D + 1)), np.zeros(3, dtype=int))},
        ValueError,
    ),
    ("validation_data", {"validation_data": (np.ones((3, D)), np.array([0, 1, C]))}, ValueError),
    ("validation_data", {"validation_data": (np.ones((3, D)), np.array([0, 1]))}, ValueError),
]


@pytest.mark.parametrize(
    ("name", "kwargs", "exc"),
    FIT_SETTINGS,
    ids=[f"{c[0]}={list(c[1].values())[-1]!r}" for c in FIT_SETTINGS],
)
def test_bad_fit_settings(model, data, name, kwargs, exc):
    X, y = data
    snap = snapshot(model)
    with pytest.raises(exc, match=arg(name) if name != "beta" else r"beta"):
        model.fit(X, y, **{"epochs": 2, **kwargs})
    assert_unchanged(model, snap)
    # The model still works afterwards.
    model.fit(X, y, epochs=1)


@pytest.mark.parametrize(
    ("value", "exc"),
    [(0.0, ValueError), (-0.1, ValueError), (float("nan"), ValueError), (float("inf"), ValueError),
     ("0.1", TypeError), (None, TypeError)],
)  # fmt: skip
def test_bad_learning_rate_is_refused_and_changes_nothing(model, data, value, exc):
    X, y = data
    model.fit(X, y, epochs=1, lr=0.1, lr_decay=0.5)
    with pytest.raises(exc, match=arg("learning_rate")):
        model.learning_rate = value
    assert model.learning_rate == 0.05


def test_learning_rate_of_a_model_never_fitted_is_refused():
    model = mlpfast.MLP([D, 5, C], dtype="float64", seed=0)
    with pytest.raises(ValueError, match=arg("learning_rate") + ".*never fitted"):
        model.learning_rate = 0.1
    assert model.learning_rate is None


def test_learning_rate_beyond_float32_is_refused_for_a_float32_model(data):
    X, y = data
    model = mlpfast.MLP([D, 5, C], dtype="float32", seed=0)
    model.fit(X, y, epochs=1)
    for value in (1e39, 1e-50):
        with pytest.raises(ValueError, match=arg("learning_rate") + ".*float32"):
            model.learning_rate = value
    assert model.learning_rate == 0.01


def test_a_bad_learning_rate_set_in_a_callback_stops_the_fit_with_its_error(model, data):
    X, y = data

    def callback(info):
        info["model"].learning_rate = -1.0

    snap = snapshot(model)
    with pytest.raises(ValueError, match=arg("learning_rate")):
        model.fit(X, y, epochs=3, callbacks=callback)
    # The first epoch trained; the rate of the next would have been the fit's.
    assert len(model.history["loss"]) == 1
    assert model.learning_rate == 0.01
    with pytest.raises(AssertionError):
        assert_unchanged(model, snap)


def test_momentum_just_below_one_is_accepted(model, data):
    X, y = data
    model.fit(X, y, epochs=1, momentum=0.999)


# --------------------------------------------------------------------------- constructors
@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"layer_sizes": [4]}, "layer_sizes"),
        ({"layer_sizes": []}, "layer_sizes"),
        ({"layer_sizes": [4, 0, 3]}, "layer_sizes"),
        ({"layer_sizes": [0, 3]}, "layer_sizes"),
        ({"layer_sizes": [4, 3, 0]}, "layer_sizes"),
        ({"layer_sizes": [4, -1, 3]}, "layer_sizes"),
        ({"layer_sizes": [4, 3], "activation": "softplus"}, "activation"),
        ({"layer_sizes": [4, 3], "activation": ""}, "activation"),
        ({"layer_sizes": [4, 3], "loss": "hinge"}, "loss"),
        ({"layer_sizes": [4, 3], "dtype": "float16"}, "dtype"),
        ({"layer_sizes": [4, 3], "dtype": "int32"}, "dtype"),
        ({"layer_sizes": [4, 3], "dtype": "double-ish"}, "dtype"),
    ],
    ids=lambda v: repr(v) if not isinstance(v, dict) else ",".join(f"{k}={v[k]}" for k in v),
)
def test_bad_mlp_constructor(kwargs, name):
    kwargs = dict(kwargs)
    sizes = kwargs.pop("layer_sizes")
    with pytest.raises(ValueError, match=arg(name)):
        mlpfast.MLP(sizes, **kwargs)


@pytest.mark.parametrize(
    ("make", "name"),
    [
        (lambda: mlpfast.Linear(0, 3), "in_features"),
        (lambda: mlpfast.Linear(3, 0), "out_features"),
        (lambda: mlpfast.Linear(3, 2, dtype="float16"), "dtype"),
        (lambda: mlpfast.Maxout(3, 2, pieces=0), "pieces"),
        (lambda: mlpfast.Maxout(0, 2), "in_features"),
        (lambda: mlpfast.Maxout(3, 2, dtype="complex"), "dtype"),
    ],
    ids=["linear-in", "linear-out", "linear-dtype", "maxout-pieces", "maxout-in", "maxout-dtype"],
)
def test_bad_layer_constructor(make, name):
    with pytest.raises(ValueError, match=arg(name)):
        make()


# --------------------------------------------------------------------------- layers
def layers():
    """One float64 instance of every layer kind."""
    return [
        mlpfast.Linear(D, C, dtype="float64", seed=0),
        mlpfast.Maxout(D, C, dtype="float64", seed=0),
    ]


@pytest.mark.parametrize("layer", layers(), ids=["linear", "maxout"])
def test_layer_bad_forward_input(layer):
    snap = snapshot(layer)
    for bad in (np.ones(D), np.ones((2, D + 1)), np.ones((1, 2, D))):
        with pytest.raises(ValueError, match=arg("x")):
            layer.forward(bad)
    with pytest.raises(ValueError, match=arg("x")):
        layer.forward(np.zeros((0, D)))
    with pytest.raises(TypeError, match=arg("x")):
        layer.forward(np.full((2, D), "a"))
    with pytest.raises(TypeError, match=arg("x")):
        layer.forward(np.ones((2, D), dtype=complex))
    assert_unchanged(layer, snap)


@pytest.mark.parametrize(
    "make", [lambda: layers()[0], lambda: layers()[1]], ids=["linear", "maxout"]
)
def test_layer_backward_before_forward(make):
    layer = make()
    snap = snapshot(layer)
    with pytest.raises(ValueError, match="forward"):
        layer.backward(np.ones((2, C)))
    assert_unchanged(layer, snap)


@pytest.mark.parametrize(
    "make", [lambda: layers()[0], lambda: layers()[1]], ids=["linear", "maxout"]
)
@pytest.mark.parametrize("shape", [(3, C), (2, C + 1), (2,), (2, C, 1)])
def test_layer_backward_wrong_dout_shape(make, shape):
    layer = make()
    layer.forward(np.ones((2, D)))
    snap = snapshot(layer)
    with pytest.raises(ValueError, match=arg("dout")):
        layer.backward(np.ones(shape))
    assert_unchanged(layer, snap)
    # Still usable with the right shape.
    assert layer.backward(np.ones((2, C))).shape == (2, D)


@pytest.mark.parametrize(
    ("make", "w_shape", "b_shape"),
    [
        (lambda: layers()[0], (D, C), (C,)),
        (lambda: layers()[1], (2, D, C), (2, C)),
    ],
    ids=["linear", "maxout"],
)
def test_assign_wrong_shape(make, w_shape, b_shape):
    layer = make()
    snap = snapshot(layer)
    for bad in (
        np.ones((*w_shape[:-1], w_shape[-1] + 1)),
        np.ones(w_shape).T,
        np.ones(w_shape).ravel(),
    ):
        with pytest.raises(ValueError, match=arg("weight")):
            layer.weight = bad
    for bad in (np.ones((*b_shape[:-1], b_shape[-1] + 1)), np.ones((*b_shape, 1))):
        with pytest.raises(ValueError, match=arg("bias")):
            layer.bias = bad
    with pytest.raises(TypeError, match=arg("weight")):
        layer.weight = np.full(w_shape, "a")
    assert_unchanged(layer, snap)


ACTIVATIONS = [
    mlpfast.Identity,
    mlpfast.Sigmoid,
    mlpfast.Tanh,
    mlpfast.ReLU,
    mlpfast.LeakyReLU,
    mlpfast.ELU,
]


@pytest.mark.parametrize("cls", ACTIVATIONS, ids=lambda c: c.__name__)
def test_activation_errors(cls):
    act = cls()
    with pytest.raises(ValueError, match="forward"):
        act.backward(np.ones((2, 3)))
    with pytest.raises(TypeError, match=arg("x")):
        act.forward(np.full((2, 3), "a"))
    act.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=arg("dout")):
        act.backward(np.ones((2, 4)))
    with pytest.raises(ValueError, match=arg("dout")):
        act.backward(np.ones((3, 3)))
    np.testing.assert_array_equal(act.backward(np.zeros((2, 3))), 0.0)  # still usable


# --------------------------------------------------------------------------- MLP methods
def test_mlp_backward_before_forward_and_wrong_shape(model):
    snap = snapshot(model)
    with pytest.raises(ValueError, match="forward"):
        model.backward(np.ones((2, C)))
    model.forward(np.ones((2, D)))
    for shape in [(2, C + 1), (3, C), (2,)]:
        with pytest.raises(ValueError, match=arg("dscores")):
            model.backward(np.ones(shape))
    assert_unchanged(model, snap)


@pytest.mark.parametrize("loss", ["svm", "mse"])
def test_predict_proba_not_available(loss, data):
    X, _ = data
    model = mlpfast.MLP([D, 5, C], loss=loss, seed=0)
    with pytest.raises(ValueError, match=r"predict_proba|probabilit"):
        model.predict_proba(X)


# --------------------------------------------------------------------------- loss functions
@pytest.mark.parametrize(
    ("call", "exc", "name"),
    [
        (lambda: mlpfast.softmax_loss(np.ones(3), [0, 1, 2]), ValueError, "scores"),
        (lambda: mlpfast.softmax_loss(np.ones((0, 3)), []), ValueError, "scores"),
        (lambda: mlpfast.softmax_loss(np.ones((2, 3)), [0, 3]), ValueError, "y"),
        (lambda: mlpfast.softmax_loss(np.ones((2, 3)), [0, -1]), ValueError, "y"),
        (lambda: mlpfast.softmax_loss(np.ones((2, 3)), [0, 1.5]), ValueError, "y"),
        (lambda: mlpfast.softmax_loss(np.ones((2, 3)), [0]), ValueError, "y"),
        (lambda: mlpfast.softmax_loss(np.full((2, 3), "a"), [0, 1]), TypeError, "scores"),
        (lambda: mlpfast.svm_loss(np.ones((2, 3)), [0, 5]), ValueError, "y"),
        (lambda: mlpfast.svm_loss(np.ones((2, 3)), [0, np.nan]), ValueError, "y"),
        (lambda: mlpfast.mse_loss(np.ones((2, 3)), np.ones((2, 2))), ValueError, "target"),
        (lambda: mlpfast.mse_loss(np.ones((2, 3)), np.ones((3, 3))), ValueError, "target"),
        (lambda: mlpfast.bce_loss(np.ones(4), np.array([0, 1, 0.5, 1])), ValueError, "y"),
        (lambda: mlpfast.bce_loss(np.ones(4), np.array([0, 1, 2, 1])), ValueError, "y"),
        (lambda: mlpfast.bce_loss(np.ones((4, 2)), np.ones((4, 3))), ValueError, "y"),
        (lambda: mlpfast.bce_loss(np.ones(4), np.ones(5)), ValueError, "y"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_bad_loss_function_input(call, exc, name):
    with pytest.raises(exc, match=arg(name)):
        call()


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("n", [0, -1, 1025, 10**6, -(2**63)])
def test_bad_num_threads(restore_threads, n):
    before = mlpfast.get_num_threads()
    with pytest.raises(ValueError, match=rf"^n: expected an integer from 1 to 1024, got {n}$"):
        mlpfast.set_num_threads(n)
    assert mlpfast.get_num_threads() == before


@pytest.mark.parametrize("n", [2.0, "2", None])
def test_num_threads_of_the_wrong_type(restore_threads, n):
    before = mlpfast.get_num_threads()
    with pytest.raises(TypeError, match=r"\bn\b"):
        mlpfast.set_num_threads(n)
    assert mlpfast.get_num_threads() == before


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_nan_deep_inside_a_large_x_is_refused_and_the_model_unchanged(shuffle, optimizer):
    # A large X is checked as the first epoch reads it; a NaN in its last rows is found
    # after many steps, and the weights and optimizer state must be put back.
    rng = np.random.default_rng(0)
    X = rng.standard_normal((70_000, 64)).astype(np.float32)
    X[69_990, 5] = np.nan
    y = rng.integers(0, 3, X.shape[0])
    model = mlpfast.MLP([64, 8, 3], seed=0)
    model.fit(X[:1000], y[:1000], epochs=1, optimizer=optimizer, momentum=0.0)
    snap = snapshot(model)
    seen = model.samples_seen
    with pytest.raises(ValueError, match=arg("X")):
        model.fit(
            X,
            y,
            epochs=3,
            batch_size=256,
            shuffle=shuffle,
            optimizer=optimizer,
            resume=True,
        )
    assert_unchanged(model, snap)
    assert model.samples_seen == seen
    # The optimizer state is the one from before the refused call: continuing it now gives
    # what continuing it without the refused call gives.
    twin = mlpfast.MLP([64, 8, 3], seed=0)
    twin.fit(X[:1000], y[:1000], epochs=1, optimizer=optimizer, momentum=0.0)
    for m in (model, twin):
        m.fit(X[:500], y[:500], epochs=1, optimizer=optimizer, seed=1, resume=True)
    for a, b in zip(snapshot(model), snapshot(twin)):
        np.testing.assert_array_equal(a[0], b[0])


# --------------------------------------------------------------------------- sizes
# Sizes whose product overflows, or that no allocation could hold, are refused when the
# object is built: a ValueError naming the size, never a broken object or a panic later.
HUGE_SIZES = [2**62, 2**63 - 1, 2**63, 2**64 - 1, 2**64, 2**100]


@pytest.mark.parametrize("size", HUGE_SIZES, ids=lambda s: f"2**{s.bit_length()}")
def test_sizes_beyond_memory_are_refused_at_construction(size):
    cases = [
        (lambda: mlpfast.MLP([size, 4]), "layer_sizes"),
        (lambda: mlpfast.MLP([4, size, 2]), "layer_sizes"),
        (lambda: mlpfast.MLP([3, size, 2], activation="maxout"), "layer_sizes"),
        (lambda: mlpfast.Linear(size, 4), "in_features"),
        (lambda: mlpfast.Linear(4, size), "out_features"),
        (lambda: mlpfast.Maxout(size, 2), "in_features"),
        (lambda: mlpfast.Maxout(2, size, pieces=3), "out_features"),
    ]
    for make, name in cases:
        with pytest.raises(ValueError, match=str(size)) as e:
            make()
        # Either the size alone (not an index) or the product is named.
        assert re.search(arg(name), str(e.value)) or "×" in str(e.value), e.value


def test_the_product_of_sizes_is_checked():
    # Each size fits an index; their product does not.
    with pytest.raises(
        ValueError, match=r"^layer_sizes: .*fits in memory.*2147483648 × 2147483648"
    ):
        mlpfast.MLP([2**31, 2**31])
    with pytest.raises(ValueError, match=r"in_features × out_features"):
        mlpfast.Linear(2**40, 2**40)
    with pytest.raises(ValueError, match=r"pieces × in_features × out_features"):
        mlpfast.Maxout(2**30, 2**30, pieces=255)


# --------------------------------------------------------------------------- integers
# Integers out of range are ValueErrors naming the argument and the value (never Python's
# OverflowError from a conversion), and bools or floats where counts go are TypeErrors.
OUT_OF_RANGE = [
    (lambda: mlpfast.MLP([4, 3], seed=-1), "seed", "-1"),
    (lambda: mlpfast.MLP([4, 3], seed=2**64), "seed", str(2**64)),
    (lambda: mlpfast.Linear(-1, 3), "in_features", "-1"),
    (lambda: mlpfast.Linear(3, 2**64), "out_features", str(2**64)),
    (lambda: mlpfast.Linear(3, 2, seed=-5), "seed", "-5"),
    (lambda: mlpfast.Maxout(3, 3, -1), "pieces", "-1"),
    (lambda: mlpfast.Maxout(3, 3, 256), "pieces", "256"),
    (lambda: mlpfast.MLP([4, -(2**70), 3]), "layer_sizes", str(-(2**70))),
]


@pytest.mark.parametrize(("make", "name", "value"), OUT_OF_RANGE)
def test_integers_out_of_range_are_value_errors_naming_the_argument(make, name, value):
    with pytest.raises(ValueError, match=rf"^{re.escape(name)}: expected .*got {re.escape(value)}"):
        make()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"epochs": 2**63}, "epochs"),
        ({"epochs": -(2**63) - 1}, "epochs"),
        ({"batch_size": 2**63}, "batch_size"),
        ({"seed": 2**64}, "seed"),
        ({"n_iter_no_change": 2**63}, "n_iter_no_change"),
    ],
    ids=lambda v: ",".join(v) if isinstance(v, dict) else v,
)
def test_fit_integers_out_of_range(model, data, kwargs, name):
    X, y = data
    snap = snapshot(model)
    with pytest.raises(
        ValueError, match=rf"^{name}: expected an int in .*got {next(iter(kwargs.values()))}"
    ) as e:
        model.fit(X, y, **kwargs)
    assert e.value.arg == name
    assert_unchanged(model, snap)
    assert model.history == {"loss": [], "lr": []}


@pytest.mark.parametrize(
    "make",
    [
        lambda: mlpfast.MLP([4, 3], seed=True),
        lambda: mlpfast.MLP([4, 3], seed=1.0),
        lambda: mlpfast.Linear(3.0, 2),
        lambda: mlpfast.Linear(True, 2),
        lambda: mlpfast.Maxout(3, 2, pieces="2"),
        lambda: mlpfast.MLP([4, 3.5, 2]),
    ],
)
def test_integers_of_the_wrong_type_are_type_errors(make):
    with pytest.raises(TypeError, match=r"^(seed|in_features|pieces|layer_sizes): expected"):
        make()


def test_numpy_integers_are_accepted_as_sizes():
    lin = mlpfast.Linear(np.int64(3), np.uint8(2), seed=np.uint64(2**63))
    assert (lin.in_features, lin.out_features) == (3, 2)
    assert mlpfast.MLP(np.array([4, 5, 3]), seed=np.int32(1)).layer_sizes == [4, 5, 3]


def test_uint64_labels_beyond_int64_are_reported_with_their_value(model, data):
    X, _ = data
    y = np.zeros(len(X), dtype=np.uint64)
    y[3] = 2**63
    snap = snapshot(model)
    for call in (lambda: model.fit(X, y), lambda: model.loss(X, y), lambda: model.score(X, y)):
        with pytest.raises(
            ValueError,
            match=rf"^y: expected class labels in \[0, {C - 1}\], got 9223372036854775808",
        ):
            call()
    assert_unchanged(model, snap)


def test_estimator_max_iter_out_of_range_keeps_the_fitted_network():
    pytest.importorskip("sklearn")
    from mlpfast.sklearn import MLPClassifier

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, D)), rng.integers(0, C, 30)
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not converged in 3 iterations
        est.fit(X, y)
    coefs = [c.copy() for c in est.coefs_]
    est.set_params(max_iter=2**80)
    with pytest.raises(ValueError, match=r"'max_iter' parameter must be an int in \[0, 2\*\*63\)"):
        est.fit(X, y)
    for a, b in zip(coefs, est.coefs_):
        np.testing.assert_array_equal(a, b)
    assert est.predict(X).shape == (30,)


# --------------------------------------------------------------------------- dtype's range
# A setting valid in float64 may overflow a float32 model (or round to 0): refused before
# any work, naming the setting and the dtype's range.
F32_RANGE = [
    ("lr", {"lr": 1e39}),
    ("lr", {"lr": 1e-46}),
    ("weight_decay", {"weight_decay": 1e39}),
    ("lr_decay", {"lr_decay": 1e300, "epochs": 2}),
    ("lr_decay", {"lr": 1.0, "lr_decay": 1e20, "epochs": 3}),
    ("eps", {"optimizer": "adam", "eps": 1e-46}),
]


@pytest.mark.parametrize(("name", "kwargs"), F32_RANGE, ids=[c[0] for c in F32_RANGE])
def test_settings_beyond_float32_are_refused_for_a_float32_model(data, name, kwargs):
    X, y = data
    model = mlpfast.MLP([D, 5, C], dtype="float32", seed=0)
    snap = snapshot(model)
    with pytest.raises(
        ValueError,
        match=rf"^{name}: expected .*representable in float32|^{name}: expected .* in float32",
    ) as e:
        model.fit(X, y, **{"epochs": 2, **kwargs})
    assert e.value.arg == name
    assert "3.4028234663852886e38" in str(e.value) or "1.401298464324817e-45" in str(e.value)
    assert_unchanged(model, snap)
    assert model.history == {"loss": [], "lr": []}
    # The same settings are representable in float64: a float64 model trains with them
    # (unless they make it diverge, which is reported differently).
    wide = mlpfast.MLP([D, 5, C], dtype="float64", seed=0)
    try:
        wide.fit(X, y, **{"epochs": 2, **kwargs})
    except FloatingPointError:
        pass


def test_power_t_below_zero_is_refused(model, data):
    X, y = data
    with pytest.raises(ValueError, match=r"^power_t: expected a finite number >= 0, got -1e300$"):
        model.fit(X, y, schedule="invscaling", power_t=-1e300)


def test_elu_alpha_beyond_float32_is_refused_on_float32_input():
    x = np.array([[-1.0, 2.0]], dtype=np.float32)
    gate = mlpfast.ELU(alpha=1e39)
    with pytest.raises(ValueError, match=r"^alpha: expected a number representable in float32"):
        gate.forward(x)
    # float64 input holds it: e^-1 - 1 times 1e39.
    out = gate.forward(x.astype(np.float64))
    np.testing.assert_allclose(out, [[1e39 * np.expm1(-1.0), 2.0]], rtol=1e-15)


def test_estimator_setting_beyond_float32_is_a_parameter_error():
    pytest.importorskip("sklearn")
    from mlpfast.sklearn import MLPRegressor

    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, D)), rng.standard_normal(30)
    est = MLPRegressor(hidden_layer_sizes=(5,), learning_rate_init=1e39, dtype="float32")
    with pytest.raises(ValueError, match=r"'learning_rate_init' parameter must be .*float32"):
        est.fit(X, y)
    assert not hasattr(est, "coefs_")


# --------------------------------------------------------------------------- gate memory
# A gate's backward uses exactly what its forward saw (the lecture's "must keep these
# around"): writing into, or resizing, the caller's array in between changes nothing.
def _gates():
    return [
        mlpfast.Linear(3, 2, dtype="float64", seed=0),
        mlpfast.Maxout(3, 2, dtype="float64", seed=0),
        mlpfast.Sigmoid(),
        mlpfast.Tanh(),
        mlpfast.ReLU(),
        mlpfast.ELU(),
        mlpfast.LeakyReLU(),
    ]


@pytest.mark.parametrize("gate", _gates(), ids=lambda g: type(g).__name__)
def test_backward_uses_what_forward_saw(gate):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3))
    out = gate.forward(x.copy())
    dout = rng.standard_normal(out.shape)
    reference = gate.backward(dout)
    params = hasattr(gate, "grad_weight")
    if params:
        ref_grads = gate.grad_weight.copy(), gate.grad_bias.copy()

    # Overwritten in place.
    x_live = x.copy()
    gate.forward(x_live)
    x_live[:] = 5.0
    np.testing.assert_array_equal(gate.backward(dout), reference)
    if params:
        np.testing.assert_array_equal(gate.grad_weight, ref_grads[0])
        np.testing.assert_array_equal(gate.grad_bias, ref_grads[1])

    # Resized (the buffer freed and reallocated) in between.
    x_live = x.copy()
    gate.forward(x_live)
    x_live.resize((1, 2), refcheck=False)
    np.testing.assert_array_equal(gate.backward(dout), reference)
    if params:
        np.testing.assert_array_equal(gate.grad_weight, ref_grads[0])


# --------------------------------------------------------------------------- real arguments
@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda m: m.l2_penalty(10**400), "weight_decay"),
        (lambda m: m.loss(np.zeros((1, D)), [0], weight_decay=10**400), "weight_decay"),
        (lambda m: mlpfast.svm_loss(np.zeros((1, 2)), [0], margin=10**400), "margin"),
        (lambda m: mlpfast.LeakyReLU(10**400), "alpha"),
        (lambda m: mlpfast.ELU(alpha=10**400), "alpha"),
    ],
    ids=["l2_penalty", "loss", "svm_loss", "leaky_relu", "elu"],
)
def test_ints_beyond_float_range_are_value_errors(model, call, name):
    # Python's float() raises OverflowError for them; mlpfast names the argument.
    with pytest.raises(ValueError, match=rf"^{name}: expected a finite number.*\(401 characters\)"):
        call(model)


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_l2_penalty_checks_weight_decay_as_loss_does(model, value):
    for call in (
        lambda: model.l2_penalty(value),
        lambda: model.loss(np.zeros((1, D)), [0], weight_decay=value),
    ):
        with pytest.raises(ValueError, match=r"^weight_decay: expected a finite number >= 0"):
            call()
    with pytest.raises(TypeError, match=r"^weight_decay: expected a finite number"):
        model.l2_penalty("0.1")
