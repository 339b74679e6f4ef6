"""Divergence is reported, never silent, and leaves the weights of the last finite step.

A fit whose training loss becomes infinite or NaN, or whose update makes a weight
non-finite, stops with FloatingPointError (an ArithmeticError) naming the epoch and the
step, and suggesting a smaller learning rate. The model keeps the weights it had after the
step before: bit for bit those of the same fit stopped one step earlier. A model whose
weights were made non-finite by hand refuses to predict, save, pickle or train rather than
return garbage or write a file that cannot be read back.
"""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest

import mlpfast


def regression(n=64, d=4, dtype=np.float64, scale=1.0):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, d)).astype(dtype)
    return X, (X @ np.ones(d) * scale).astype(dtype)


def params(model):
    return [(lay.weight.copy(), lay.bias.copy()) for lay in model.param_layers]


def assert_same(a, b):
    for (wa, ba), (wb, bb) in zip(a, b):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


# The case: full-batch SGD at lr=10 on a regression blows up within a few epochs.
DIVERGING = {"lr": 10.0, "epochs": 20, "batch_size": 64}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_diverging_loss_stops_the_fit(dtype):
    X, y = regression(dtype=dtype)
    model = mlpfast.MLP([4, 16, 1], loss="mse", dtype=dtype, seed=0)
    with pytest.raises(FloatingPointError, match=r"^training diverged at epoch \d+") as e:
        model.fit(X, y, **DIVERGING)
    err = e.value
    assert isinstance(err, ArithmeticError)
    assert 1 < err.step <= DIVERGING["epochs"] and err.epoch == err.step  # one step an epoch
    assert "smaller learning rate (lr=10)" in str(err)
    # The curves hold the finite epochs before it; the weights are finite ...
    assert len(model.history["loss"]) == err.epoch - 1
    assert np.isfinite(model.history["loss"]).all()
    assert all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in params(model))
    # ... and are the weights of the fit that stops one step earlier.
    twin = mlpfast.MLP([4, 16, 1], loss="mse", dtype=dtype, seed=0)
    twin.fit(X, y, **{**DIVERGING, "epochs": err.step - 1})
    assert_same(params(model), params(twin))
    assert model.history == twin.history
    # Their loss was the infinite one: predict returns finite values or refuses, never NaN.
    try:
        assert np.isfinite(model.predict(X)).all()
    except ValueError as exc:
        assert "NaN or infinite" in str(exc)


def test_an_update_that_overflows_is_undone():
    # The loss at the step is finite; the update (at lr 3.3e38 after lr_decay) is not.
    # The weights are put back to those after the previous step: here, after epoch 1.
    X, y = regression(dtype=np.float32, scale=1e3)
    settings = {"lr": 1e-3, "batch_size": 16, "shuffle": False}
    model = mlpfast.MLP([4, 16, 1], loss="mse", seed=0)
    with pytest.raises(FloatingPointError, match="an update made a weight infinite or NaN") as e:
        model.fit(X, y, lr_decay=3.3e41, epochs=2, **settings)
    assert (e.value.epoch, e.value.step) == (2, 5)
    twin = mlpfast.MLP([4, 16, 1], loss="mse", seed=0)
    twin.fit(X, y, epochs=1, **settings)
    assert_same(params(model), params(twin))
    assert model.history == twin.history


def test_divergence_with_adam_momentum_and_callbacks():
    X, y = regression()
    seen = []
    for kwargs in (
        {"optimizer": "adam", "lr": 1e200},
        {"momentum": 0.9, "nesterov": True, "lr": 10.0},
    ):
        model = mlpfast.MLP([4, 16, 1], loss="mse", dtype="float64", seed=0)
        with pytest.raises(FloatingPointError):
            model.fit(X, y, epochs=50, batch_size=16, callbacks=[seen.append], **kwargs)
        assert all(np.isfinite(w).all() and np.isfinite(b).all() for w, b in params(model))
    assert seen  # the callbacks ran on the finite epochs


def test_a_diverged_model_saves_and_loads(tmp_path):
    X, y = regression()
    model = mlpfast.MLP([4, 16, 1], loss="mse", dtype="float64", seed=0)
    with pytest.raises(FloatingPointError):
        model.fit(X, y, **DIVERGING)
    mlpfast.save(model, tmp_path / "m.safetensors")
    back = mlpfast.load(tmp_path / "m.safetensors")
    assert_same(params(model), params(back))
    assert_same(params(model), params(pickle.loads(pickle.dumps(model))))


def test_estimators_raise_scikit_learns_error_and_keep_finite_weights():
    pytest.importorskip("sklearn")
    from mlpfast.sklearn import MLPRegressor

    X, y = regression()
    est = MLPRegressor(
        hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=10.0, momentum=0.0,
        batch_size=64, max_iter=50, random_state=0,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"^Solver produced non-finite parameter weights") as e:
        est.fit(X, y)
    assert isinstance(e.value.__cause__, FloatingPointError)
    assert all(np.isfinite(c).all() for c in est.coefs_ + est.intercepts_)
    assert np.isfinite(est.loss_curve_).all()
    assert np.isfinite(est.predict(X)).all()


# --------------------------------------------------------------------------- hand-made NaN
def nan_model(activation="relu"):
    """A classifier whose first weight was set to NaN through the live view."""
    model = mlpfast.MLP([4, 6, 3], activation=activation, dtype="float64", seed=0)
    model.param_layers[0].weight[0, 0] = np.nan
    return model


# ReLU and maxout pass NaN on (max(0, NaN) is NaN, as numpy's maximum and PyTorch's relu
# say), so a NaN weight reaches the outputs whatever the activation.
@pytest.mark.parametrize("activation", ["relu", "maxout", "leaky_relu", "elu", "tanh"])
@pytest.mark.parametrize("method", ["predict", "predict_proba", "score"])
def test_non_finite_weights_do_not_predict_silently(method, activation):
    X = np.random.default_rng(0).standard_normal((5, 4))
    args = (X, np.zeros(5, int)) if method == "score" else (X,)
    with pytest.raises(ValueError, match="NaN or infinite"):
        getattr(nan_model(activation), method)(*args)


def test_non_finite_weights_are_not_saved_nor_pickled_nor_trained(tmp_path):
    model = nan_model()
    with pytest.raises(ValueError, match=r"param_layers\[0\]: expected finite weights"):
        mlpfast.save(model, tmp_path / "m.safetensors")
    assert not (tmp_path / "m.safetensors").exists()
    with pytest.raises(ValueError, match=r"param_layers\[0\]: expected finite weights"):
        pickle.dumps(model)
    X = np.random.default_rng(0).standard_normal((8, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="expected finite values to train from"):
            model.fit(X, np.zeros(8, int), epochs=1)
    assert np.isnan(model.param_layers[0].weight[0, 0])  # refused, so unchanged


def test_validation_outputs_that_overflow_are_divergence():
    # Finite validation data too large for the weights the epoch reached: the epoch trained,
    # so this is not bad input (which would leave the model as it was) but a divergence.
    model = mlpfast.MLP([1, 1], activation="identity", loss="mse", dtype="float32", seed=0)
    model.param_layers[0].weight = [[0.5]]
    with pytest.raises(FloatingPointError, match="the outputs for the validation data") as e:
        model.fit(
            np.array([[1.0]]), np.array([[1000.0]]), epochs=3,
            validation_data=(np.array([[3.4e38]]), np.array([[0.0]])),
        )  # fmt: skip
    assert (e.value.epoch, e.value.step) == (1, 1)
    twin = mlpfast.MLP([1, 1], activation="identity", loss="mse", dtype="float32", seed=0)
    twin.param_layers[0].weight = [[0.5]]
    twin.fit(np.array([[1.0]]), np.array([[1000.0]]), epochs=1)
    assert_same(params(model), params(twin))  # the epoch's step, without its validation
    assert model.history == twin.history
