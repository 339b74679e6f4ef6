"""MLP(batch_norm=True) beyond its numerics (those are test_mlp_batchnorm.py's): the
estimators' batch_norm, ONNX export, model files, reading a fit's BatchNorm state from
callbacks and other threads, and the best epoch's running statistics restored.

The running statistics are part of what a network predicts with, so every surface that
carries weights must carry them too: bit for bit through pickles and model files, folded
into the ONNX graph, published with the epoch's weights while a fit runs, and kept with the
best weights when a fit restores them.
"""

from __future__ import annotations

import collections
import json
import pickle
import struct
import threading
import time
import warnings

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast

pytest.importorskip("sklearn")

from sklearn.base import clone
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import r2_score
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler

from mlpfast.sklearn import MLPClassifier, MLPRegressor


# --------------------------------------------------------------------------- helpers
def quiet(est, *args, **kw):
    """``est.fit(*args, **kw)`` without the short fits' ConvergenceWarning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(*args, **kw)


def state(model) -> list[tuple[np.ndarray, ...]]:
    """Copies of every parameter layer's arrays: (weight, bias), and (weight, bias,
    running_mean, running_var) for a BatchNorm, from one moment (``MLP._params``)."""
    return [tuple(np.array(a) for a in arrays) for arrays in model._params()]


def same_state(a, b) -> bool:
    """The two states (lists as ``state`` gives) are equal bit for bit."""
    return len(a) == len(b) and all(
        len(p) == len(q) and all(x.dtype == y.dtype and x.tobytes() == y.tobytes()
                                 for x, y in zip(p, q))
        for p, q in zip(a, b)
    )  # fmt: skip


def batch_norms(model) -> list[mlpfast.BatchNorm]:
    return [lay for lay in model.layers if isinstance(lay, mlpfast.BatchNorm)]


def running_moved(model) -> bool:
    """Every BatchNorm's running statistics have left their start (mean 0, variance 1)."""
    return all(
        np.all(bn.running_mean != 0.0) and np.all(bn.running_var != 1.0)
        for bn in batch_norms(model)
    )


def offset_data(rng, rows: int, cols: int, dtype: str) -> np.ndarray:
    """Columns with means and scales far from 0 and 1, so that the running statistics a fit
    leaves are far from the fresh ones."""
    shift = rng.uniform(-3.0, 3.0, cols)
    scale = rng.uniform(0.5, 3.0, cols)
    return (rng.normal(size=(rows, cols)) * scale + shift).astype(dtype)


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    y = (y - y.mean()) / y.std()
    return train_test_split(X, y, test_size=0.25, random_state=0)


# =========================================================================== estimators
@pytest.mark.parametrize("early_stopping", [False, True])
@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_classifier_with_batch_norm_on_digits(digits, activation, early_stopping):
    X, Xt, y, yt = digits
    clf = quiet(
        MLPClassifier(hidden_layer_sizes=(64, 32), activation=activation, batch_norm=True,
                      early_stopping=early_stopping, max_iter=40, random_state=0),
        X, y,
    )  # fmt: skip
    mlp = clf._mlp
    assert mlp.batch_norm is True and clf.batch_norm is True
    kinds = [type(lay).__name__ for lay in mlp.param_layers]
    matrix = "Maxout" if activation == "maxout" else "Linear"
    assert kinds == [matrix, "BatchNorm", matrix, "BatchNorm", "Linear"]
    # scikit-learn's attributes: coefs_ / intercepts_ of the matrix layers only.
    assert clf.n_layers_ == 4 == len(clf.coefs_) + 1 == len(clf.intercepts_) + 1
    pieces = (2,) if activation == "maxout" else ()
    assert [c.shape for c in clf.coefs_] == [(*pieces, 64, 64), (*pieces, 64, 32), (32, 10)]
    assert [b.shape for b in clf.intercepts_] == [(*pieces, 64), (*pieces, 32), (10,)]
    # ... views of the network's Linear / Maxout layers, in order.
    matrices = [lay for lay in mlp.param_layers if not isinstance(lay, mlpfast.BatchNorm)]
    for c, b, lay in zip(clf.coefs_, clf.intercepts_, matrices):
        assert np.shares_memory(c, lay.weight) and np.shares_memory(b, lay.bias)
    # batch_norm_layers_: the network's BatchNorm objects, one per hidden layer.
    bns = clf.batch_norm_layers_
    assert len(bns) == 2 and all(isinstance(bn, mlpfast.BatchNorm) for bn in bns)
    assert [bn.features for bn in bns] == [64, 32]
    assert all((bn.momentum, bn.eps, bn.dtype) == (0.1, 1e-5, "float32") for bn in bns)
    for bn, lay in zip(bns, batch_norms(mlp)):
        assert np.shares_memory(bn.running_mean, lay.running_mean)
        assert np.shares_memory(bn.weight, lay.weight)
    assert running_moved(mlp)
    # The fit learned, and predictions are those of the network (by the running statistics).
    assert clf.score(Xt, yt) > 0.9
    proba = clf.predict_proba(Xt)
    assert proba.shape == (len(Xt), 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(clf.predict(Xt), clf.classes_[proba.argmax(axis=1)])
    np.testing.assert_array_equal(proba, mlp.predict_proba(Xt.astype(np.float32)))
    if early_stopping:
        assert len(clf.validation_scores_) == clf.n_iter_ and clf.best_validation_score_ > 0.9
    else:
        assert clf.validation_scores_ is None and clf.best_loss_ == min(clf.loss_curve_)


@pytest.mark.parametrize("early_stopping", [False, True])
def test_regressor_with_batch_norm_on_diabetes(diabetes, early_stopping):
    X, Xt, y, yt = diabetes
    kw = dict(hidden_layer_sizes=(32, 16), max_iter=20, learning_rate_init=0.01, random_state=0)
    reg = quiet(MLPRegressor(batch_norm=True, early_stopping=early_stopping, **kw), X, y)
    assert [c.shape for c in reg.coefs_] == [(10, 32), (32, 16), (16, 1)]
    assert [b.shape for b in reg.intercepts_] == [(32,), (16,), (1,)]
    assert reg.n_layers_ == len(reg.coefs_) + 1 == 4
    assert [bn.features for bn in reg.batch_norm_layers_] == [32, 16]
    assert running_moved(reg._mlp)
    pred = reg.predict(Xt)
    assert pred.shape == (len(Xt),)
    # It learned (the diabetes data: scikit-learn's MLP fits it to about 0.6 in this many
    # epochs, and overfits on longer fits) and generalizes some.
    assert reg.score(X, y) > 0.5 and reg.score(Xt, yt) > 0.1
    assert reg.score(Xt, yt) == r2_score(yt, pred)
    # Two outputs: the same layers, and the last one as wide as the targets.
    Y = np.stack([y, -2 * y], axis=1)
    two = quiet(MLPRegressor(batch_norm=True, early_stopping=early_stopping, **kw), X, Y)
    assert two.coefs_[-1].shape == (16, 2) and two.predict(Xt).shape == (len(Xt), 2)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_without_batch_norm_there_are_no_batch_norm_layers(cls):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    est = quiet(cls(hidden_layer_sizes=(5, 4), max_iter=3, random_state=0), X, X[:, 0] > 0)
    assert est.batch_norm is False and est._mlp.batch_norm is False
    assert est.batch_norm_layers_ == []
    assert len(est.coefs_) == len(est.intercepts_) == est.n_layers_ - 1 == 3


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
@pytest.mark.parametrize("bad", [1, 0, "True", None, 1.0, np.array([True])], ids=repr)
def test_batch_norm_must_be_a_bool(cls, bad):
    rng = np.random.default_rng(1)
    X = rng.standard_normal((30, 3))
    est = cls(hidden_layer_sizes=(4,), batch_norm=bad, max_iter=2)
    with pytest.raises(ValueError, match=r"The 'batch_norm' parameter must be a bool"):
        est.fit(X, X[:, 0] > 0)
    assert not hasattr(est, "coefs_") and not hasattr(est, "_mlp")


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_batch_norm_is_refused_with_lbfgs(cls):
    rng = np.random.default_rng(2)
    X = rng.standard_normal((30, 3))
    y = X[:, 0] > 0
    est = cls(hidden_layer_sizes=(4,), solver="lbfgs", batch_norm=True, max_iter=5)
    with pytest.raises(ValueError, match=r"batch_norm: expected False with solver='lbfgs'"):
        est.fit(X, y)
    assert not hasattr(est, "_mlp")
    # numpy's bool is a bool; and lbfgs without batch norm fits.
    quiet(cls(hidden_layer_sizes=(4,), batch_norm=np.bool_(True), max_iter=2), X, y)
    quiet(cls(hidden_layer_sizes=(4,), solver="lbfgs", batch_norm=False, max_iter=5), X, y)


@pytest.mark.parametrize("fitted_with", [True, False])
def test_warm_start_and_partial_fit_keep_the_fitted_batch_norm(digits, fitted_with):
    X, _, y, _ = digits
    clf = quiet(
        MLPClassifier(hidden_layer_sizes=(16,), batch_norm=fitted_with, max_iter=3,
                      random_state=0),
        X, y,
    )  # fmt: skip
    before = state(clf._mlp)
    t = clf.t_
    clf.set_params(warm_start=True, batch_norm=not fitted_with)
    match = rf"batch_norm {fitted_with}; .*{not fitted_with}\. Set warm_start=False"
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    with pytest.raises(ValueError, match=match):
        clf.partial_fit(X, y)
    # Refused before training: the network is as it was.
    assert same_state(state(clf._mlp), before) and clf.t_ == t
    assert clf._mlp.batch_norm is fitted_with
    # The fitted network's own batch_norm continues it; a cold start builds a new one.
    clf.set_params(batch_norm=fitted_with)
    quiet(clf, X, y)
    assert clf.t_ == t + 3 * len(X)
    clf.set_params(warm_start=False, batch_norm=not fitted_with)
    quiet(clf, X, y)
    assert clf._mlp.batch_norm is (not fitted_with)
    assert len(clf.batch_norm_layers_) == (0 if fitted_with else 1)


@pytest.mark.parametrize("activation", ["relu", "maxout"])
def test_weighted_fits_with_batch_norm_are_the_references(activation):
    # The estimators' class_weight and sample_weight reach MLP.fit as row weights: each
    # batch's loss is their weighted mean, its statistics are unweighted (PyTorch's), and a
    # batch whose rows all weigh 0 is skipped, running statistics included.
    rng = np.random.default_rng(41)
    model = mlpfast.MLP([5, 8, 6, 3], activation=activation, dtype="float64", seed=0,
                        batch_norm=True)  # fmt: skip
    X, y = ref.make_data("softmax", 23, 5, 3, rng)
    w = rng.uniform(0.0, 3.0, 23)
    w[5:10] = 0.0  # the second batch
    w[0] = 1000.0  # a class weight's scale
    start, running = ref.params_of(model), ref.running_of(model)
    settings = dict(optimizer="adam", lr=0.01, eps=1e-3, epochs=3, batch_size=5, weight_decay=1e-2)
    history = model.fit(X, y, sample_weight=w, shuffle=False, seed=1, **settings)
    params, expected_running, expected = ref.fit_batchnorm(
        start, activation, "softmax", X, y, running=running, sample_weight=w, seed=1, **settings
    )
    for (gw, gb), (rw, rb) in zip(ref.params_of(model), params):
        np.testing.assert_allclose(gw, rw, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(gb, rb, rtol=1e-10, atol=1e-13)
    for (gm, gv), (rm, rv) in zip(ref.running_of(model), expected_running):
        np.testing.assert_allclose(gm, rm, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(gv, rv, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(history["loss"], expected["loss"], rtol=1e-10, atol=1e-13)
    # Counting the skipped batch's statistics would have moved them elsewhere.
    unskipped = ref.fit_batchnorm(
        start, activation, "softmax", X, y, running=running, sample_weight=np.maximum(w, 1e-9),
        seed=1, **settings,
    )[1]  # fmt: skip
    assert not np.allclose(unskipped[0][0], expected_running[0][0], rtol=1e-6)


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_with_batch_norm(digits, cls):
    X, Xt, y, yt = digits
    target = y if cls is MLPClassifier else y / 10.0
    est = cls(hidden_layer_sizes=(32,), batch_norm=True, learning_rate_init=0.01, random_state=0)
    first = {"classes": np.arange(10)} if cls is MLPClassifier else {}
    chunks = np.array_split(np.arange(len(X)), 4)
    seen = []
    for i, rows in enumerate(chunks):
        est.partial_fit(X[rows], target[rows], **(first if i == 0 else {}))
        seen.append(state(est._mlp))
        assert len(est.loss_curve_) == i + 1
        assert est.t_ == sum(len(r) for r in chunks[: i + 1])
    # Every call moved the running statistics on from the last one's.
    for a, b in zip(seen, seen[1:]):
        assert all(np.all(p[2] != q[2]) for p, q in zip(a, b) if len(p) == 4)
    assert len(est.batch_norm_layers_) == 1 and running_moved(est._mlp)
    if cls is MLPClassifier:
        assert est.score(Xt, yt) > 0.5  # one pass over the data; chance is 0.1
    # A chunk whose last batch would be one row (batch_size=2, 5 rows): that row joins the
    # batch before it.
    est.set_params(batch_size=2)
    est.partial_fit(X[:5], target[:5])
    assert est.t_ == len(X) + 5
    # batch_size=1 has no batch statistics: refused, naming it.
    est.set_params(batch_size=1)
    before, curve, t = state(est._mlp), list(est.loss_curve_), est.t_
    with pytest.raises(ValueError, match=r"batch_size: expected >= 2 .* batch_norm"):
        est.partial_fit(X[:10], target[:10])
    assert same_state(state(est._mlp), before) and est.loss_curve_ == curve and est.t_ == t


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_partial_fit_on_one_row_is_refused(digits, cls):
    X, _, y, _ = digits
    target = y if cls is MLPClassifier else y / 10.0
    first = {"classes": np.arange(10)} if cls is MLPClassifier else {}
    message = r"X: expected at least 2 samples to train a network with batch_norm.*got 1 sample"
    # On a fitted estimator: refused, the estimator as it was.
    est = cls(hidden_layer_sizes=(8,), batch_norm=True, random_state=0)
    est.partial_fit(X[:50], target[:50], **first)
    before, curve, t = state(est._mlp), list(est.loss_curve_), est.t_
    with pytest.raises(ValueError, match=message):
        est.partial_fit(X[:1], target[:1])
    assert same_state(state(est._mlp), before)
    assert est.loss_curve_ == curve and est.t_ == t and est.n_iter_ == 1
    # On a new one: refused, and it stays unfitted.
    fresh = cls(hidden_layer_sizes=(8,), batch_norm=True, random_state=0)
    with pytest.raises(ValueError, match=message):
        fresh.partial_fit(X[:1], target[:1], **first)
    assert not hasattr(fresh, "_mlp") and not hasattr(fresh, "coefs_")
    # Without batch norm one row is a fit like any other.
    plain = cls(hidden_layer_sizes=(8,), random_state=0)
    plain.partial_fit(X[:1], target[:1], **first)
    assert plain.t_ == 1


def test_clone_and_get_params_carry_batch_norm(digits):
    X, _, y, _ = digits
    assert MLPClassifier().get_params()["batch_norm"] is False
    assert MLPRegressor().get_params()["batch_norm"] is False
    clf = MLPClassifier(hidden_layer_sizes=(16,), batch_norm=True, dropout=0.2, max_iter=5,
                        random_state=3)  # fmt: skip
    assert clf.get_params()["batch_norm"] is True
    quiet(clf, X, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and twin.batch_norm is True
    assert not hasattr(twin, "_mlp") and not hasattr(twin, "batch_norm_layers_")
    quiet(twin, X, y)
    # The same parameters and random_state: the same network, running statistics included.
    assert same_state(state(twin._mlp), state(clf._mlp))
    assert twin.set_params(batch_norm=False).get_params()["batch_norm"] is False


def test_grid_search_over_batch_norm(digits):
    X, Xt, y, yt = digits
    grid = GridSearchCV(
        MLPClassifier(
            hidden_layer_sizes=(32,), max_iter=15, learning_rate_init=0.01, random_state=0
        ),
        {"batch_norm": [False, True]},
        cv=3,
    )
    quiet(grid, X, y)
    assert [p["batch_norm"] for p in grid.cv_results_["params"]] == [False, True]
    assert np.all(grid.cv_results_["mean_test_score"] > 0.8)
    best = grid.best_estimator_
    assert best.batch_norm is grid.best_params_["batch_norm"]
    assert len(best.batch_norm_layers_) == (1 if best.batch_norm else 0)
    assert grid.score(Xt, yt) > 0.8


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_estimator_pickles_and_files_keep_batch_norm(digits, tmp_path, cls):
    X, Xt, y, _ = digits
    target = y if cls is MLPClassifier else y / 10.0
    est = quiet(
        cls(hidden_layer_sizes=(24, 12), activation="maxout", batch_norm=True, dropout=0.1,
            dtype="float64", max_iter=4, random_state=0),
        X, target,
    )  # fmt: skip
    est.save(tmp_path / "est.safetensors")
    copies = {
        "pickle": pickle.loads(pickle.dumps(est)),
        "file": mlpfast.load(tmp_path / "est.safetensors"),
    }
    predict = "predict_proba" if cls is MLPClassifier else "predict"
    for how, back in copies.items():
        assert type(back) is cls, how
        assert back.get_params() == est.get_params() and back.batch_norm is True
        assert back._mlp.batch_norm is True
        assert same_state(state(back._mlp), state(est._mlp)), how
        np.testing.assert_array_equal(getattr(back, predict)(Xt), getattr(est, predict)(Xt))
        # The attributes are bound to the copy's own network.
        assert [bn.features for bn in back.batch_norm_layers_] == [24, 12]
        for bn, lay in zip(back.batch_norm_layers_, batch_norms(back._mlp)):
            assert np.shares_memory(bn.running_var, lay.running_var)
        for c, lay in zip(back.coefs_, back._mlp.param_layers[::2]):
            assert np.shares_memory(c, lay.weight)
    # A pickle carries the training session: partial_fit goes on as the original's.
    twin = copies["pickle"]
    est.partial_fit(X, target)
    twin.partial_fit(X, target)
    assert same_state(state(twin._mlp), state(est._mlp))
    assert twin.loss_curve_ == est.loss_curve_ and twin.t_ == est.t_


def read_parts(data: bytes):
    """(header dict, data section) of a safetensors file (as test_io.py's)."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def write_parts(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def test_estimator_file_metadata_and_batch_norm(digits, tmp_path):
    X, _, y, _ = digits
    bn = quiet(MLPClassifier(hidden_layer_sizes=(8,), batch_norm=True, max_iter=2,
                             random_state=0), X, y)  # fmt: skip
    meta = read_parts(mlpfast.io.to_bytes(bn))[0]["__metadata__"]
    assert meta["batch_norm"] == "true" and json.loads(meta["params"])["batch_norm"] is True

    def load_with(params_edit=None, meta_edit=None, est=bn):
        h, b = read_parts(mlpfast.io.to_bytes(est))
        params = json.loads(h["__metadata__"]["params"])
        if params_edit:
            params_edit(params)
        h["__metadata__"]["params"] = json.dumps(params)
        if meta_edit:
            meta_edit(h["__metadata__"])
        return mlpfast.io.from_bytes(write_parts(h, b))

    # The estimator's batch_norm parameter must agree with the network's.
    with pytest.raises(ValueError, match=r"corrupt estimator metadata.*batch_norm True"):
        load_with(lambda p: p.update(batch_norm=False))
    with pytest.raises(ValueError, match=r"'batch_norm' parameter must be a bool"):
        load_with(lambda p: p.update(batch_norm="yes"))
    # A file written before batch_norm existed (neither the parameter nor the metadata
    # field): an estimator without batch norm.
    plain = quiet(MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0), X, y)
    old = load_with(
        lambda p: p.pop("batch_norm"), lambda m: m.pop("batch_norm"), est=plain
    )  # fmt: skip
    assert old.batch_norm is False and old._mlp.batch_norm is False
    assert old.batch_norm_layers_ == []
    np.testing.assert_array_equal(old.predict_proba(X), plain.predict_proba(X))


# =========================================================================== ONNX
# test_onnx.py's rule: |onnx - mlpfast| <= TOL * (1 + |mlpfast|).
TOL = {"float32": 1e-5, "float64": 1e-12}


def assert_close(actual, expected, dtype: str) -> None:
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, rtol=TOL[dtype], atol=TOL[dtype])


def run_onnx(model_proto, X) -> dict[str, np.ndarray]:
    """The ONNX model's outputs on X, by name (test_onnx.py's ``run``)."""
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(
        model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (x,) = session.get_inputs()
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {x.name: X})))


def op_counts(proto) -> collections.Counter:
    return collections.Counter(node.op_type for node in proto.graph.node)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("activation", ["relu", "tanh", "maxout"])
@pytest.mark.parametrize("loss", ["softmax", "mse"])
def test_to_onnx_folds_batch_norm(loss, activation, dropout, dtype):
    pytest.importorskip("onnx")
    rng = np.random.default_rng(21)
    sizes = [6, 16, 12, 4]
    X = offset_data(rng, 300, 6, dtype)
    if loss == "softmax":
        y = (X[:, 0] > X[:, 1]).astype(np.int64) + (X[:, 2] > X[:, 2].mean()) * 2
    else:
        y = np.stack([X[:, 0], X[:, 1] * X[:, 2], X[:, 3], -X[:, 4]], axis=1)
    model = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=3,
                        dropout=dropout, batch_norm=True)  # fmt: skip
    for bn in batch_norms(model):  # gamma and beta away from 1 and 0 too
        bn.weight = rng.uniform(0.5, 2.0, bn.features)
        bn.bias = rng.uniform(-1.0, 1.0, bn.features)
    model.fit(X, y, epochs=3, batch_size=32, seed=0, optimizer="adam", lr=0.01)
    assert running_moved(model)
    proto = mlpfast.to_onnx(model)
    # Each BatchNorm is one Mul and one Add more than the same network without it; nothing
    # of training mode (no BatchNormalization, no Dropout) is in the graph.
    plain = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype=dtype, seed=3)
    extra = op_counts(proto)
    extra.subtract(op_counts(mlpfast.to_onnx(plain)))
    assert +extra == collections.Counter({"Mul": 2, "Add": 2})
    out = run_onnx(proto, X)
    if loss == "softmax":
        assert list(out) == ["label", "probabilities", "scores"]
        np.testing.assert_array_equal(out["label"], model.predict(X))
        assert_close(out["scores"], model.decision_function(X), dtype)
        assert_close(out["probabilities"], model.predict_proba(X), dtype)
    else:
        assert list(out) == ["variable"]
        assert_close(out["variable"], model.predict(X), dtype)
    # The graph is the one of the model in evaluation mode, whatever mode it is in.
    assert model.training
    model.eval()
    assert mlpfast.to_onnx(model).graph == proto.graph


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_to_onnx_of_a_batch_norm_estimator(digits, dtype):
    pytest.importorskip("onnx")
    X, Xt, y, _ = digits
    clf = quiet(
        MLPClassifier(hidden_layer_sizes=(32, 16), batch_norm=True, dtype=dtype, max_iter=10,
                      random_state=0),
        X, y,
    )  # fmt: skip
    Xd = Xt.astype(dtype)
    out = run_onnx(mlpfast.to_onnx(clf), Xd)
    assert list(out) == ["label", "probabilities"]
    np.testing.assert_array_equal(out["label"], clf.predict(Xd))
    assert_close(out["probabilities"], clf.predict_proba(Xd), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_skl2onnx_pipelines_with_batch_norm(dtype):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import make_pipeline

    rng = np.random.default_rng(22)
    X = offset_data(rng, 300, 5, "float64")
    band = np.digitize(X[:, 0], np.quantile(X[:, 0], [0.33, 0.66]))
    labels = np.array(["low", "mid", "high"])[band]
    kw = dict(batch_norm=True, max_iter=30, dtype=dtype, random_state=0)
    clf = quiet(make_pipeline(StandardScaler(), MLPClassifier((10, 6), **kw)), X, labels)
    Y = np.stack([X[:, 0] * 2 + X[:, 1], X[:, 2] ** 2], axis=1)
    reg = quiet(make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(8,), **kw)), X, Y)
    Xd = X.astype(dtype)
    out = run_onnx(skl2onnx.to_onnx(clf, Xd[:1], options={MLPClassifier: {"zipmap": False}}), Xd)
    assert list(out) == ["label", "probabilities"]
    np.testing.assert_array_equal(out["label"], clf.predict(Xd))
    assert_close(out["probabilities"], clf.predict_proba(Xd).astype(dtype), dtype)
    out = run_onnx(skl2onnx.to_onnx(reg, Xd[:1]), Xd)
    assert list(out) == ["variable"]
    assert_close(out["variable"], reg.predict(Xd).astype(dtype), dtype)


# =========================================================================== model files
@pytest.mark.parametrize(
    ("activation", "dtype", "dropout"),
    [("maxout", "float32", 0.0), ("maxout", "float64", 0.3), ("tanh", "float32", 0.3)],
)
def test_model_files_keep_batch_norm_and_a_fit_goes_on_identically(
    tmp_path, activation, dtype, dropout
):
    rng = np.random.default_rng(31)
    X = offset_data(rng, 90, 5, dtype)
    y = rng.integers(0, 3, 90)
    model = mlpfast.MLP([5, 8, 6, 3], activation=activation, dtype=dtype, seed=0,
                        dropout=dropout, batch_norm=True)  # fmt: skip
    model.fit(X, y, epochs=3, batch_size=16, seed=3, optimizer="adam", lr=0.01)
    assert running_moved(model)
    path = tmp_path / "m.safetensors"
    mlpfast.save(model, path)
    loaded = mlpfast.load(path)
    assert loaded.batch_norm is True and loaded.dropout == dropout
    assert (loaded.layer_sizes, loaded.activation, loaded.dtype) == (
        [5, 8, 6, 3],
        activation,
        dtype,
    )
    assert [type(lay) for lay in loaded.layers] == [type(lay) for lay in model.layers]
    assert same_state(state(loaded), state(model))
    for a, b in zip(batch_norms(loaded), batch_norms(model)):
        assert (a.momentum, a.eps, a.dtype) == (b.momentum, b.eps, b.dtype)
    np.testing.assert_array_equal(loaded.decision_function(X), model.decision_function(X))
    # The file's layout: running statistics for the BatchNorm layers only, pieces null there.
    header, _ = read_parts(path.read_bytes())
    meta = header.pop("__metadata__")
    assert meta["batch_norm"] == "true"
    hidden = 2 if activation == "maxout" else None
    assert json.loads(meta["pieces"]) == [hidden, None, hidden, None, None]
    stats = sorted(k for k in header if "running" in k)
    assert stats == [f"layers.{i}.running_{s}" for i in (1, 3) for s in ("mean", "var")]
    assert header["layers.3.running_var"]["shape"] == [6]
    # A new fit of the loaded network is the original's, step for step (the file holds no
    # training session: both start a new one).
    settings = dict(epochs=3, batch_size=16, seed=4, optimizer="adam", lr=0.01)
    twin = pickle.loads(pickle.dumps(model))
    h0 = model.fit(X, y, **settings)
    assert loaded.fit(X, y, **settings) == h0
    assert same_state(state(loaded), state(model))
    # A pickle carries the session: resuming it is resuming the original.
    assert twin.fit(X, y, **settings) == h0
    h1 = model.fit(X, y, resume=True, **settings)
    assert twin.fit(X, y, resume=True, **settings) == h1
    assert same_state(state(twin), state(model))


def test_a_pickled_model_in_evaluation_mode_stays_there():
    m = mlpfast.MLP([4, 6, 2], batch_norm=True, seed=0).eval()
    back = pickle.loads(pickle.dumps(m))
    assert back.batch_norm is True and not back.training
    assert not any(lay.training for lay in back.layers)


@pytest.mark.parametrize("strip", [["batch_norm"], ["batch_norm", "dropout"]])
def test_a_file_without_the_batch_norm_field_has_no_batch_norm(tmp_path, strip):
    # Files written before batch_norm existed (and before dropout did) have no such fields.
    model = mlpfast.MLP([4, 7, 5, 3], activation="maxout", dtype="float64", seed=2)
    header, body = read_parts(mlpfast.io.to_bytes(model))
    for key in strip:
        del header["__metadata__"][key]
    path = tmp_path / "old.safetensors"
    path.write_bytes(write_parts(header, body))
    old = mlpfast.load(path)
    assert old.batch_norm is False and old.dropout == 0.0
    assert not batch_norms(old)
    assert same_state(state(old), state(model))
    X = np.random.default_rng(0).standard_normal((10, 4))
    np.testing.assert_array_equal(old.decision_function(X), model.decision_function(X))


def tensors_of(data: bytes) -> tuple[dict, dict[str, np.ndarray]]:
    """(metadata, {name: array}) of a model file."""
    header, body = read_parts(data)
    meta = header.pop("__metadata__")
    kinds = {"F32": "<f4", "F64": "<f8"}
    arrays = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = np.frombuffer(body[begin:end], dtype=kinds[info["dtype"]])
        arrays[name] = raw.reshape(info["shape"])
    return meta, arrays


def file_of(meta: dict, arrays: dict[str, np.ndarray]) -> bytes:
    """A well-formed safetensors file of these tensors (offsets laid out afresh)."""
    header: dict = {"__metadata__": meta}
    parts, at = [], 0
    for name, arr in arrays.items():
        raw = arr.tobytes()
        dtype = {"<f4": "F32", "<f8": "F64"}[arr.dtype.str]
        header[name] = {
            "dtype": dtype,
            "shape": list(arr.shape),
            "data_offsets": [at, at + len(raw)],
        }
        parts.append(raw)
        at += len(raw)
    return write_parts(header, b"".join(parts))


def set_meta(key, value):
    def edit(meta, arrays):
        meta[key] = value

    return edit


def drop(name):
    def edit(meta, arrays):
        del arrays[name]

    return edit


def add(name, array):
    def edit(meta, arrays):
        arrays[name] = array

    return edit


def set_tensor(name, fn):
    def edit(meta, arrays):
        arrays[name] = fn(arrays[name].copy())

    return edit


def with_value(index, value):
    def fn(a):
        a[index] = value
        return a

    return fn


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (set_meta("batch_norm", "1"), r"bad batch_norm 1\b"),
        (set_meta("batch_norm", "0"), r"bad batch_norm 0\b"),
        (set_meta("batch_norm", '"true"'), r"bad batch_norm 'true'"),
        (set_meta("batch_norm", "null"), r"bad batch_norm None"),
        (set_meta("batch_norm", "[true]"), r"bad batch_norm \[True\]"),
        (set_meta("batch_norm", "True"), r"'batch_norm' is missing or not valid JSON"),
        # The field contradicts the tensors (and the pieces): the file is refused.
        (set_meta("batch_norm", "false"), r"do not match the architecture"),
        (set_meta("pieces", "[2, 2, 2, null, null]"), r"pieces .* do not match"),
        (drop("layers.1.running_var"), r"missing \['layers\.1\.running_var'\]"),
        (drop("layers.3.running_mean"), r"missing \['layers\.3\.running_mean'\]"),
        # Running statistics for a layer that is no BatchNorm (the Maxout layer 2).
        (add("layers.2.running_mean", np.zeros(5, "<f4")), r"extra \['layers\.2\.running_mean'\]"),
        (
            set_tensor("layers.1.running_var", with_value(2, -1.0)),
            r"tensor 'layers\.1\.running_var': running_var: expected values >= 0",
        ),
        (
            set_tensor("layers.3.running_var", with_value(0, -1e-30)),
            r"tensor 'layers\.3\.running_var': .*negative",
        ),
        (
            set_tensor("layers.1.running_var", with_value(0, np.nan)),
            r"tensor 'layers\.1\.running_var': running_var: expected finite values",
        ),
        (
            set_tensor("layers.1.running_mean", with_value(1, np.inf)),
            r"tensor 'layers\.1\.running_mean': running_mean: expected finite values",
        ),
        (
            set_tensor("layers.3.weight", with_value(1, -np.inf)),
            r"tensor 'layers\.3\.weight': weight: expected finite values",
        ),
        (
            set_tensor("layers.1.running_var", lambda a: a[:5]),
            r"tensor 'layers\.1\.running_var' has shape \(5,\), expected \(6,\)",
        ),
        (
            set_tensor("layers.1.running_mean", lambda a: a.reshape(2, 3)),
            r"tensor 'layers\.1\.running_mean' has shape \(2, 3\), expected \(6,\)",
        ),
        (
            set_tensor("layers.3.bias", lambda a: np.concatenate([a, a])),
            r"tensor 'layers\.3\.bias' has shape \(10,\), expected \(5,\)",
        ),
        (
            set_tensor("layers.3.running_var", lambda a: a.astype("<f8")),
            r"tensor 'layers\.3\.running_var' is float64, the model is float32",
        ),
    ],
)
def test_corrupt_batch_norm_files_are_refused(edit, match):
    rng = np.random.default_rng(33)
    model = mlpfast.MLP([4, 6, 5, 3], activation="maxout", batch_norm=True, seed=0)
    model.fit(offset_data(rng, 40, 4, "float32"), rng.integers(0, 3, 40), epochs=2,
              batch_size=8, seed=0)  # fmt: skip
    meta, arrays = tensors_of(mlpfast.io.to_bytes(model))
    edit(meta, arrays)
    with pytest.raises(ValueError, match=match) as info:
        mlpfast.io.from_bytes(file_of(meta, arrays))
    assert str(info.value).startswith("<bytes>: ")


def test_a_batch_norm_field_on_a_network_without_batch_norm_is_refused():
    model = mlpfast.MLP([4, 6, 3], seed=0)
    meta, arrays = tensors_of(mlpfast.io.to_bytes(model))
    meta["batch_norm"] = "true"
    with pytest.raises(ValueError, match=r"pieces .* do not match the architecture"):
        mlpfast.io.from_bytes(file_of(meta, arrays))


# =========================================================================== during a fit
EPOCHS = 4


def bn_data(seed: int = 0, n: int = 600):
    """test_readable_during_fit.py's data, its columns shifted and scaled."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 10)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(int) + (X[:, 2] > 0.5).astype(int)
    return X * 2.0 + 1.5, y


def bn_model(width: int = 32):
    return mlpfast.MLP([10, width, 16, 3], seed=1, batch_norm=True)


def train(m, X, y, epochs=EPOCHS, **kw):
    return m.fit(X, y, epochs=epochs, batch_size=32, optimizer="adam", lr=1e-2, seed=5, **kw)


def bn_arrays(bn) -> tuple[np.ndarray, ...]:
    return bn.weight, bn.bias, bn.running_mean, bn.running_var


def test_in_a_callback_the_batch_norm_state_is_the_epochs(tmp_path):
    X, y = bn_data()
    m = bn_model()
    seen = []

    def callback(info):
        model = info["model"]
        arrays = [bn_arrays(bn) for bn in batch_norms(model)]
        for arr in (a for group in arrays for a in group):
            assert not arr.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                arr[...] = 0.0
        for group, params in zip(arrays, [p for p in model._params() if len(p) == 4]):
            for a, b in zip(group, params):  # the attributes and _params: the same epoch
                np.testing.assert_array_equal(a, b)
        path = tmp_path / f"epoch{info['epoch']}.safetensors"
        mlpfast.save(model, path)
        copy = pickle.loads(pickle.dumps(model))
        seen.append((state(model), model.decision_function(X), copy, path))

    train(m, X, y, callbacks=callback)
    assert len(seen) == EPOCHS
    for e, (during, scores, copy, path) in enumerate(seen, start=1):
        twin = bn_model()
        train(twin, X, y, epochs=e)
        assert same_state(during, state(twin)), e
        np.testing.assert_array_equal(scores, twin.decision_function(X))
        # A pickle and a checkpoint taken in the callback hold that epoch's statistics.
        assert same_state(state(copy), state(twin)), e
        assert same_state(state(mlpfast.load(path)), state(twin)), e
    assert not same_state(seen[0][0], seen[-1][0])
    # After the fit the BatchNorm gives live, writeable views again.
    bn = m.layers[1]
    view = bn.running_mean
    assert view.flags.writeable and np.shares_memory(view, bn.running_mean)
    view[0] = 7.0
    assert bn.running_mean[0] == 7.0


def test_another_thread_reads_the_batch_norm_state_during_a_fit():
    # A reader started in the epoch-1 callback and stopped in the last epoch's (as
    # test_readable_during_fit.py's writer is): in between the fit is running, so every read
    # is a read-only copy. Each epoch's callback waits until the reader has seen that epoch's
    # state, so the reader sees every epoch from the first to the last but one, in order.
    X, y = bn_data(n=2000)
    epochs = 6
    m = bn_model(width=128)
    bn = m.layers[1]
    stop = threading.Event()
    seen, errors = [], []

    def key(model):
        return tuple(a.tobytes() for a in model._params()[1])  # one moment's state

    def reader():
        while not stop.is_set():
            try:
                w, mean = bn.weight, bn.running_mean
                for arr in (w, mean):
                    assert not arr.flags.writeable
                    with pytest.raises(ValueError, match="read-only"):
                        arr[...] = 0.0
                    assert np.isfinite(arr).all()
                now = key(m)
                if not seen or seen[-1] != now:
                    seen.append(now)
            except Exception as e:  # the test reports any failure
                errors.append(e)
                return

    thread = threading.Thread(target=reader)
    per_epoch = []

    def callback(info):
        per_epoch.append(key(info["model"]))
        e = info["epoch"]
        if e == 1:
            thread.start()
        if e < epochs:
            deadline = time.monotonic() + 30
            while per_epoch[-1] not in seen and not errors and time.monotonic() < deadline:
                time.sleep(1e-4)
        else:
            stop.set()
            thread.join()

    train(m, X, y, epochs=epochs, callbacks=callback)
    assert errors == []
    assert len(per_epoch) == epochs and len(set(per_epoch)) == epochs  # it changes
    # Every state the reader saw is a completed epoch's, each epoch's was seen, in order.
    assert seen[: epochs - 1] == per_epoch[: epochs - 1]
    assert set(seen) <= set(per_epoch)
    for before, after in zip(per_epoch, per_epoch[1:]):
        assert before[2] != after[2] and before[0] != after[0]  # running_mean and gamma


# =========================================================================== best epoch
def best_epoch(scores) -> int:
    """The epoch (from 1) whose weights a fit restores: the first of the best score."""
    return int(np.argmax(scores)) + 1


@pytest.mark.parametrize(("loss", "metric"), [("softmax", "val_accuracy"), ("mse", "val_r2")])
def test_the_restored_best_weights_carry_that_epochs_running_statistics(loss, metric):
    X, y = bn_data()
    Y = y if loss == "softmax" else np.eye(3)[y] + X[:, :3]
    (Xv, Yv), (Xt, Yt) = (X[:100], Y[:100]), (X[100:], Y[100:])
    m = mlpfast.MLP([10, 32, 16, 3], loss=loss, seed=1, batch_norm=True, dropout=0.1)
    recorded = {}

    def callback(info):
        model = info["model"]
        recorded[info["epoch"]] = (model.decision_function(Xv), state(model))

    history = m.fit(Xt, Yt, epochs=60, batch_size=32, optimizer="adam", lr=5e-2, seed=5,
                    validation_data=(Xv, Yv), n_iter_no_change=3, callbacks=callback)  # fmt: skip
    last = len(history["loss"])
    assert m.stopped_early and last < 60
    best = best_epoch(history[metric])
    assert best < last
    # The model ends with the best epoch's weights and running statistics, not the last's,
    # and predicts as it did then.
    assert same_state(state(m), recorded[best][1])
    assert not same_state(state(m), recorded[last][1])
    bn_best = [p for p in recorded[best][1] if len(p) == 4]
    bn_last = [p for p in recorded[last][1] if len(p) == 4]
    assert all(np.any(a[2] != b[2]) and np.any(a[3] != b[3]) for a, b in zip(bn_best, bn_last))
    np.testing.assert_array_equal(m.decision_function(Xv), recorded[best][0])
    assert m.score(Xv, Yv) == pytest.approx(history[metric][best - 1], rel=1e-12)


def test_a_resumed_fit_restores_the_best_running_statistics_from_a_pickle_too():
    # The stopping rule's best weights (running statistics included) travel in a pickle's
    # session: a resumed fit that never beats them ends with them, in the copy as in the
    # original.
    X, y = bn_data()
    val = (X[:100], y[:100])
    settings = dict(batch_size=32, optimizer="adam", validation_data=val, n_iter_no_change=3)
    m = mlpfast.MLP([10, 32, 16, 3], seed=1, batch_norm=True, dtype="float64")
    m.fit(X[100:], y[100:], epochs=40, lr=5e-2, seed=5, **settings)
    best = state(m)
    twin = pickle.loads(pickle.dumps(m))
    runs = [
        model.fit(X[100:], y[100:], epochs=4, lr=0.5, seed=6, resume=True, **settings)
        for model in (m, twin)
    ]
    assert runs[0] == runs[1]
    earlier = m.history["val_accuracy"][: -len(runs[0]["loss"])]
    assert max(runs[0]["val_accuracy"]) <= max(earlier)  # never beaten
    assert same_state(state(m), best) and same_state(state(twin), best)


def test_an_estimators_early_stopping_restores_the_best_running_statistics(digits):
    X, Xt, y, _ = digits
    recorded = {}

    def callback(info):
        est = info["model"]
        recorded[info["epoch"]] = (
            est.predict_proba(Xt),
            [tuple(np.array(a) for a in bn_arrays(bn)) for bn in est.batch_norm_layers_],
        )

    clf = MLPClassifier(hidden_layer_sizes=(32,), batch_norm=True, early_stopping=True,
                        n_iter_no_change=3, max_iter=100, learning_rate_init=0.05,
                        random_state=0)  # fmt: skip
    quiet(clf, X, y, callbacks=callback)
    assert clf.n_iter_ < 100
    best = best_epoch(clf.validation_scores_)
    assert best < clf.n_iter_ and clf.best_validation_score_ == clf.validation_scores_[best - 1]
    np.testing.assert_array_equal(clf.predict_proba(Xt), recorded[best][0])
    now = [tuple(np.array(a) for a in bn_arrays(bn)) for bn in clf.batch_norm_layers_]
    assert same_state(now, recorded[best][1])
    assert not same_state(now, recorded[clf.n_iter_][1])


def test_a_negative_running_variance_is_not_saved_nor_pickled(tmp_path):
    # What is written must load again, and loading refuses negative variances.
    model = mlpfast.MLP([3, 4, 2], batch_norm=True, seed=0)
    model.param_layers[1].running_var[0] = -1.0  # through the live view, unchecked
    message = r"param_layers\[1\]: expected running variances >= 0 to save"
    with pytest.raises(ValueError, match=message):
        mlpfast.save(model, tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match=message):
        pickle.dumps(model)
    assert not (tmp_path / "m.safetensors").exists()


def test_batch_norm_without_hidden_layers_normalizes_nothing_and_fits_one_row():
    model = mlpfast.MLP([3, 2], batch_norm=True, dtype="float64", seed=0)
    assert model.batch_norm and not any(isinstance(x, mlpfast.BatchNorm) for x in model.layers)
    model.fit(np.ones((1, 3)), [1], epochs=2, batch_size=1)
    assert model.samples_seen == 2


def test_estimators_pickled_before_batch_norm_existed_load_with_it_off():
    X, y = load_digits(return_X_y=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier((8,), max_iter=2, random_state=0).fit(X[:100], y[:100])
    state = clf.__getstate__()
    del state["batch_norm"], state["dropout"]  # as an older version pickled it
    old = MLPClassifier.__new__(MLPClassifier)
    old.__setstate__(state)
    assert old.batch_norm is False and old.dropout == 0.0
    assert "MLPClassifier" in repr(old)
    np.testing.assert_array_equal(old.predict(X[:20]), clf.predict(X[:20]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        old.partial_fit(X[100:150], y[100:150])
