"""pickle and copy of the native objects (copyreg reducers) and of the estimators."""

from __future__ import annotations

import base64
import copy
import pickle
import warnings

import numpy as np
import old_pickles
import pytest

import mlpfast

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout"]


def params(model):
    return [(lay.weight, lay.bias) for lay in model.layers if hasattr(lay, "weight")]


def assert_same_params(a, b):
    pa, pb = params(a), params(b)
    assert len(pa) == len(pb)
    for (wa, ba), (wb, bb) in zip(pa, pb):
        assert wa.dtype == wb.dtype and wa.shape == wb.shape
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_round_trips_exactly(rng, activation, dtype):
    model = mlpfast.MLP([4, 6, 5, 3], activation=activation, loss="svm", dtype=dtype, seed=2)
    X = rng.standard_normal((16, 4))
    model.fit(X, rng.integers(0, 3, 16), epochs=2, seed=0)
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(model, protocol=protocol))
        assert type(back) is mlpfast.MLP
        assert repr(back) == repr(model)
        assert [type(lay) for lay in back.layers] == [type(lay) for lay in model.layers]
        assert_same_params(model, back)
        np.testing.assert_array_equal(back.forward(X), model.forward(X))


@pytest.mark.parametrize("loss", ["softmax", "svm", "mse", "bce", "half_squared_error"])
def test_mlp_loss_round_trips(loss):
    assert pickle.loads(pickle.dumps(mlpfast.MLP([3, 2], loss=loss))).loss_name == loss


def test_copy_is_independent(rng):
    model = mlpfast.MLP([3, 4, 2], dtype="float64", seed=0)
    twin = copy.deepcopy(model)
    assert_same_params(model, twin)
    twin.layers[0].weight[...] = 0.0
    assert not np.all(model.layers[0].weight == 0.0)
    # The copy trains on its own.
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    twin.fit(X, y, epochs=1, seed=0)
    assert twin.samples_seen == 20 and model.samples_seen == 0
    assert_same_params(copy.copy(model), model)


def test_layers_round_trip(rng):
    lin = mlpfast.Linear(3, 4, dtype="float64", seed=1)
    lin.bias = [1.0, 2.0, 3.0, 4.0]
    mx = mlpfast.Maxout(3, 2, pieces=4, seed=1)
    for layer in (lin, mx):
        back = pickle.loads(pickle.dumps(layer))
        assert repr(back) == repr(layer)
        np.testing.assert_array_equal(back.weight, layer.weight)
        np.testing.assert_array_equal(back.bias, layer.bias)
        x = rng.standard_normal((5, 3))
        np.testing.assert_array_equal(back.forward(x), layer.forward(x))
    assert pickle.loads(pickle.dumps(mx)).pieces == 4


@pytest.mark.parametrize(
    "act",
    [
        mlpfast.Identity(),
        mlpfast.Sigmoid(),
        mlpfast.Tanh(),
        mlpfast.ReLU(),
        mlpfast.LeakyReLU(0.2),
        mlpfast.ELU(0.7),
    ],
)
def test_activations_round_trip(rng, act):
    back = pickle.loads(pickle.dumps(act))
    assert type(back) is type(act) and repr(back) == repr(act)
    x = rng.standard_normal((4, 3))
    np.testing.assert_array_equal(back.forward(x), act.forward(x))


# ------------------------------------------------------------------ the training session
SESSIONS = {
    "momentum": {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05},
    "nesterov": {"optimizer": "sgd", "momentum": 0.8, "nesterov": True, "lr": 0.05},
    "adam": {"optimizer": "adam", "lr": 0.01},
    "adaptive": {"optimizer": "sgd", "lr": 0.1, "schedule": "adaptive", "n_iter_no_change": 1},
    "adamw": {"optimizer": "adamw", "lr": 0.01, "weight_decay": 0.1, "clip_grad_norm": 0.5},
    "rmsprop": {"optimizer": "rmsprop", "lr": 0.01, "alpha": 0.9, "weight_decay": 1e-3},
    "rmsprop_momentum": {"optimizer": "rmsprop", "lr": 0.005, "momentum": 0.8},
    "cosine_warmup": {"optimizer": "adam", "lr": 0.01, "schedule": "cosine", "warmup_epochs": 2},
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(SESSIONS))
def test_a_pickled_model_goes_on_training_as_the_original(rng, name, dtype):
    # The optimizer's state, the schedule, the stopping rule (with its best weights), the
    # generator and the history travel with the model: resuming a copy gives the original's
    # bits, shuffling with seed=None included.
    X, y = rng.standard_normal((60, 4)), rng.integers(0, 3, 60)
    val = (X[:20], y[:20])
    settings = {**SESSIONS[name], "batch_size": 16, "validation_data": val}
    model = mlpfast.MLP([4, 7, 3], dtype=dtype, seed=1)
    model.fit(X, y, epochs=3, **settings)
    twins = [pickle.loads(pickle.dumps(model)), copy.deepcopy(model)]
    for twin in twins:
        assert twin.samples_seen == model.samples_seen
        assert twin.learning_rate == model.learning_rate
        assert twin.history == model.history
        assert twin.stopped_early == model.stopped_early
    runs = [m.fit(X, y, epochs=3, resume=True, **settings) for m in [model, *twins]]
    assert runs[0] == runs[1] == runs[2]
    for twin in twins:
        assert_same_params(model, twin)
        assert twin.history == model.history


def test_a_damaged_session_state_is_refused(rng):
    model = mlpfast.MLP([3, 4, 2], dtype="float64", seed=0)
    X, y = rng.standard_normal((20, 3)), rng.integers(0, 2, 20)
    model.fit(X, y, epochs=2, optimizer="adam", seed=0)
    state = model._session_state()
    fresh = mlpfast.MLP([3, 4, 2], dtype="float64", seed=5)
    with pytest.raises(ValueError, match="session state"):
        fresh._set_session_state(state[:-3])
    with pytest.raises(ValueError, match="session state"):
        fresh._set_session_state(b"x" + state[1:])
    with pytest.raises(ValueError, match=r"session state.*float32"):
        mlpfast.MLP([3, 4, 2], dtype="float32")._set_session_state(state)
    with pytest.raises(ValueError, match=r"session state.*other layer sizes"):
        mlpfast.MLP([3, 5, 2], dtype="float64")._set_session_state(state)
    assert fresh.samples_seen == 0  # unchanged by the refusals
    fresh._set_session_state(state)
    assert fresh.samples_seen == model.samples_seen == 40
    # A pickle with a damaged state fails as a pickle does: with the reason.
    reducer, args = copyreg_reduce(model)
    with pytest.raises(ValueError, match="pickled MLP: session state"):
        reducer(*args[:5], args[5][:10])
    # A pickle written before sessions travelled (five arguments) still loads.
    old = reducer(*args[:5])
    assert_same_params(old, model)
    assert old.samples_seen == 0


@pytest.mark.parametrize("name", list(old_pickles.V1_PICKLES))
def test_a_pickle_of_an_older_session_record_resumes_as_it_did(name):
    # A pickle from before the session record's version 2 loads, and resuming it trains to
    # the bits the older mlpfast reached.
    settings, lr_after, after, blob = old_pickles.V1_PICKLES[name]
    model = pickle.loads(base64.b64decode("".join(blob)))
    rng = np.random.default_rng(7)
    X, y = rng.standard_normal((30, 3)), rng.integers(0, 2, 30)
    model.fit(
        X, y, epochs=2, batch_size=8, validation_data=(X[:10], y[:10]), resume=True, **settings
    )
    got = [v for lay in model.param_layers for arr in (lay.weight, lay.bias) for v in np.ravel(arr)]
    assert got == [float.fromhex(v) for v in after]
    assert model.learning_rate == float.fromhex(lr_after)
    # Written again, it is a current record, which reads back.
    again = pickle.loads(pickle.dumps(model))
    assert again.history == model.history and again.learning_rate == model.learning_rate


def copyreg_reduce(obj):
    import copyreg

    return copyreg.dispatch_table[type(obj)](obj)


# --------------------------------------------------------------------------- estimators
@pytest.fixture
def skl():
    return pytest.importorskip("mlpfast.sklearn")


def test_classifier_pickle(rng, skl):
    X = rng.standard_normal((60, 4))
    y = np.array(["a", "b", "c"])[rng.integers(0, 3, 60)]
    clf = skl.MLPClassifier((8,), activation="maxout", max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    assert back.get_params() == clf.get_params()
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    assert back.loss_curve_ == clf.loss_curve_
    # coefs_ are again views of the (new) network, not stale copies.
    back.coefs_[-1][...] = 0.0
    back.intercepts_[-1][...] = 0.0
    np.testing.assert_allclose(back.predict_proba(X), 1 / 3, rtol=1e-6)
    assert not np.allclose(clf.predict_proba(X), 1 / 3)
    # And it keeps training.
    back.partial_fit(X, y)
    assert back.n_iter_ == 1 and len(back.loss_curve_) == 6


@pytest.mark.parametrize("solver", ["adam", "sgd", "adamw", "rmsprop"])
def test_partial_fit_after_pickling_continues_the_optimizer_as_sklearn(rng, skl, solver):
    # scikit-learn's pickles keep the optimizer's state, so a partial_fit after a round trip
    # is the one without it; so are mlpfast's (dask-ml's Incremental relies on it).
    X, y = rng.standard_normal((120, 4)), rng.integers(0, 3, 120)
    clf = skl.MLPClassifier((8,), solver=solver, random_state=0)
    clf.partial_fit(X[:60], y[:60], classes=np.arange(3))
    back = pickle.loads(pickle.dumps(clf))
    clf.partial_fit(X[60:], y[60:])
    back.partial_fit(X[60:], y[60:])
    assert back.loss_curve_ == clf.loss_curve_
    for a, b in zip(back.coefs_ + back.intercepts_, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(a, b)


def test_regressor_pickle_and_deepcopy(rng, skl):
    X = rng.standard_normal((40, 3))
    Y = rng.standard_normal((40, 2))
    reg = skl.MLPRegressor(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg.fit(X, Y)
    for back in (pickle.loads(pickle.dumps(reg)), copy.deepcopy(reg)):
        np.testing.assert_array_equal(back.predict(X), reg.predict(X))
        assert back._mlp is not reg._mlp
        assert all(np.shares_memory(c, back._mlp.layers[0].weight) for c in back.coefs_[:1])
