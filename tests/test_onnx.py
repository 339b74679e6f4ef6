"""ONNX export: mlpfast.to_onnx and the skl2onnx converters, run in onnxruntime.

onnxruntime's outputs must be mlpfast's own: labels exactly, probabilities, scores and
predictions within a tolerance set by the dtype's rounding (the two libraries sum the same
products in different orders), for every activation and loss of MLP, the estimators'
target kinds, and skl2onnx pipelines holding the estimators.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

from sklearn.exceptions import ConvergenceWarning, NotFittedError  # noqa: E402

import mlpfast  # noqa: E402
from mlpfast._core import ACTIVATIONS, LOSSES  # noqa: E402
from mlpfast.sklearn import MLPClassifier, MLPRegressor  # noqa: E402

# |onnx - mlpfast| <= TOL * (1 + |mlpfast|): relative for large values, absolute near 0.
TOL = {"float32": 1e-5, "float64": 1e-12}
DTYPES = ["float32", "float64"]
CLASSIFICATION = {"softmax", "svm", "bce"}


def assert_close(actual, expected, dtype: str) -> None:
    assert actual.dtype == np.dtype(dtype)
    assert actual.shape == expected.shape
    tol = TOL[dtype]
    np.testing.assert_allclose(actual, expected, rtol=tol, atol=tol)


def run(model_proto, X) -> dict[str, np.ndarray]:
    """The ONNX model's outputs on X, by name."""
    session = ort.InferenceSession(
        model_proto.SerializeToString(), providers=["CPUExecutionProvider"]
    )
    (x,) = session.get_inputs()
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {x.name: X})))


def data(rng, rows: int, cols: int, dtype: str) -> np.ndarray:
    # Spread wide enough that every activation's negative and positive sides are used.
    return (rng.normal(size=(rows, cols)) * 2).astype(dtype)


# --------------------------------------------------------------------------- MLP
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_every_activation_and_loss(rng, activation, loss, dtype):
    model = mlpfast.MLP([6, 9, 7, 4], activation=activation, loss=loss, dtype=dtype, seed=3)
    X = data(rng, 300, 6, dtype)
    proto = mlpfast.to_onnx(model)
    (x,) = proto.graph.input
    assert x.name == "X"
    assert x.type.tensor_type.elem_type == onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    out = run(proto, X)
    if loss in CLASSIFICATION:
        expected = ["label", "probabilities", "scores"] if loss != "svm" else ["label", "scores"]
        assert list(out) == expected
        assert out["label"].dtype == np.int64
        np.testing.assert_array_equal(out["label"], model.predict(X))
        assert_close(out["scores"], model.decision_function(X), dtype)
        if loss != "svm":
            assert_close(out["probabilities"], model.predict_proba(X), dtype)
    else:
        assert list(out) == ["variable"]
        assert_close(out["variable"], model.predict(X), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("loss", ["bce", "mse", "poisson"])
def test_mlp_one_output(rng, loss, dtype):
    model = mlpfast.MLP([5, 8, 1], activation="tanh", loss=loss, dtype=dtype, seed=1)
    X = data(rng, 200, 5, dtype)
    out = run(mlpfast.to_onnx(model), X)
    if loss == "bce":  # binary: labels (N,) and probabilities [1 - p, p]
        assert out["label"].shape == (200,)
        np.testing.assert_array_equal(out["label"], model.predict(X))
        assert_close(out["probabilities"], model.predict_proba(X), dtype)
        assert 0 < out["label"].sum() < 200
    else:
        assert_close(out["variable"], model.predict(X), dtype)


def test_mlp_trained_weights(rng):
    # Weights moved by training, not only the initial draw.
    X = data(rng, 400, 6, "float32")
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)
    model = mlpfast.MLP([6, 16, 3], activation="maxout", loss="softmax", seed=0)
    model.fit(X, y, epochs=5, lr=0.05, seed=0)
    out = run(mlpfast.to_onnx(model), X)
    np.testing.assert_array_equal(out["label"], model.predict(X))
    assert_close(out["probabilities"], model.predict_proba(X), "float32")


def test_maxout_every_piece_wins(rng):
    # The export of a Maxout layer must take each unit's max over the same pieces mlpfast
    # does: with the pieces' weights distinct, every piece wins somewhere.
    model = mlpfast.MLP([4, 5, 2], activation="maxout", loss="mse", dtype="float64", seed=7)
    maxout = model.layers[0]
    X = data(rng, 100, 4, "float64")
    pieces = np.einsum("ni,pio->pno", X, maxout.weight) + maxout.bias[:, None, :]
    winners = pieces.argmax(axis=0)
    assert set(np.unique(winners)) == {0, 1}
    assert_close(run(mlpfast.to_onnx(model), X)["variable"], model.predict(X), "float64")


# --------------------------------------------------------------------------- estimators
def fitted(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


def targets(kind: str, X: np.ndarray):
    """Class targets of ``kind`` for ``X``."""
    band = np.digitize(X[:, 0], [-1.0, 1.0])
    return {
        "binary-int": np.where(X[:, 0] + X[:, 1] > 0, 7, -2),
        "binary-str": np.where(X[:, 0] + X[:, 1] > 0, "spam", "ham"),
        "binary-bool": X[:, 0] > 0,
        "multiclass-int": band * 10 + 1,
        "multiclass-str": np.array(["low", "mid", "high"])[band],
        "multiclass-float": band.astype(np.float64),
        "multilabel": (X[:, :3] > 0).astype(np.int64),
    }[kind]


KINDS = [
    "binary-int",
    "binary-str",
    "binary-bool",
    "multiclass-int",
    "multiclass-str",
    "multiclass-float",
    "multilabel",
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "logistic", "leaky_relu", "elu", "maxout"])
@pytest.mark.parametrize("kind", KINDS)
def test_classifier(rng, kind, activation, dtype):
    X = data(rng, 300, 5, "float64")
    y = targets(kind, X)
    clf = fitted(
        MLPClassifier((12, 6), activation=activation, max_iter=30, dtype=dtype, random_state=0),
        X,
        y,
    )
    Xd = X.astype(dtype)
    out = run(mlpfast.to_onnx(clf), Xd)
    assert list(out) == ["label", "probabilities"]
    predicted = clf.predict(Xd)
    assert out["label"].shape == predicted.shape
    np.testing.assert_array_equal(out["label"], predicted)
    assert out["label"].dtype == (object if "str" in kind else np.int64)
    assert_close(out["probabilities"], clf.predict_proba(Xd), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["binary-str", "multiclass-int"])
def test_hinge_classifier(rng, kind, dtype):
    # loss="hinge": labels by the largest class score; "probabilities" holds those scores.
    X = data(rng, 300, 5, "float64")
    clf = fitted(
        MLPClassifier((10,), loss="hinge", max_iter=30, dtype=dtype, random_state=0),
        X,
        targets(kind, X),
    )
    Xd = X.astype(dtype)
    out = run(mlpfast.to_onnx(clf), Xd)
    np.testing.assert_array_equal(out["label"], clf.predict(Xd))
    assert_close(out["probabilities"], clf._mlp.decision_function(Xd), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("outputs", [1, 3])
@pytest.mark.parametrize("activation", ["identity", "tanh", "relu", "elu", "maxout"])
def test_regressor(rng, activation, outputs, dtype):
    X = data(rng, 300, 5, "float64")
    y = X[:, :outputs] * 2 + X[:, 1:2] ** 2
    reg = fitted(
        MLPRegressor(
            hidden_layer_sizes=(10,),
            activation=activation,
            max_iter=30,
            dtype=dtype,
            random_state=0,
        ),
        X,
        y.ravel() if outputs == 1 else y,
    )
    Xd = X.astype(dtype)
    out = run(mlpfast.to_onnx(reg), Xd)
    assert list(out) == ["variable"]
    assert out["variable"].shape == (300, outputs)
    assert_close(out["variable"], reg.predict(Xd).reshape(300, outputs).astype(dtype), dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("loss", ["poisson", "huber", "absolute_error"])
def test_regressor_losses(rng, loss, dtype):
    # The Poisson regressor's graph ends in e^output (its log link); every loss's variable is
    # its predict.
    X = data(rng, 200, 4, "float64")
    y = rng.poisson(np.exp(0.5 * X[:, :2])).astype(np.float64)
    reg = fitted(
        MLPRegressor(loss=loss, hidden_layer_sizes=(8,), max_iter=20, dtype=dtype, random_state=0),
        X,
        y,
    )
    Xd = X.astype(dtype)
    out = run(mlpfast.to_onnx(reg), Xd)
    assert_close(out["variable"], reg.predict(Xd).astype(dtype), dtype)


def test_regressor_exp_output(rng):
    # out_activation_ is read, not assumed: an "exp" output (a Poisson regressor's log link)
    # exports as e^output.
    X = data(rng, 100, 4, "float64")
    reg = fitted(MLPRegressor(hidden_layer_sizes=(6,), max_iter=5, random_state=0), X, X[:, 0])
    reg.out_activation_ = "exp"
    out = run(mlpfast.to_onnx(reg), X.astype(np.float32))
    assert_close(
        out["variable"], np.exp(reg._mlp.decision_function(X.astype(np.float32))), "float32"
    )
    reg.out_activation_ = "softplus"
    with pytest.raises(ValueError, match=r"out_activation_.*'softplus'"):
        mlpfast.to_onnx(reg)


# --------------------------------------------------------------------------- skl2onnx
def pipeline(est, X, y):
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return fitted(make_pipeline(StandardScaler(), est), X, y)


@pytest.mark.parametrize("model_dtype", DTYPES)
@pytest.mark.parametrize("input_dtype", DTYPES)
@pytest.mark.parametrize("kind", ["binary-str", "multiclass-int", "multilabel"])
def test_skl2onnx_classifier_pipeline(rng, kind, input_dtype, model_dtype):
    skl2onnx = pytest.importorskip("skl2onnx")
    X = data(rng, 300, 5, "float64")
    pipe = pipeline(
        MLPClassifier((10,), max_iter=30, dtype=model_dtype, random_state=0), X, targets(kind, X)
    )
    Xi = X.astype(input_dtype)
    proto = skl2onnx.to_onnx(pipe, Xi[:1], options={MLPClassifier: {"zipmap": False}})
    out = run(proto, Xi)
    assert list(out) == ["label", "probabilities"]
    np.testing.assert_array_equal(out["label"], pipe.predict(Xi))
    # The classifier computes in its dtype; skl2onnx's outputs are in the input's.
    expected = pipe.predict_proba(Xi).astype(input_dtype)
    tol = TOL[model_dtype] if input_dtype == model_dtype else TOL["float32"]
    assert out["probabilities"].dtype == np.dtype(input_dtype)
    np.testing.assert_allclose(out["probabilities"], expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("kind", ["binary-int", "multiclass-str"])
def test_skl2onnx_zipmap(rng, kind):
    # skl2onnx's default for classifiers: the probabilities as a list of {class: p}.
    skl2onnx = pytest.importorskip("skl2onnx")
    X = data(rng, 100, 5, "float32")
    pipe = pipeline(MLPClassifier((10,), max_iter=30, random_state=0), X, targets(kind, X))
    out = run(skl2onnx.convert_sklearn(pipe, initial_types=_float_input(5)), X)
    assert list(out) == ["output_label", "output_probability"]
    np.testing.assert_array_equal(out["output_label"], pipe.predict(X))
    proba = pipe.predict_proba(X)
    classes = pipe[-1].classes_
    got = np.array([[row[c.item()] for c in classes] for row in out["output_probability"]])
    np.testing.assert_allclose(got, proba, rtol=1e-5, atol=1e-5)


def _float_input(n: int):
    from skl2onnx.common.data_types import FloatTensorType

    return [("X", FloatTensorType([None, n]))]


def test_skl2onnx_nocl_gives_class_indices(rng):
    # skl2onnx's option nocl: labels as indices into classes_ instead of the classes.
    skl2onnx = pytest.importorskip("skl2onnx")
    X = data(rng, 100, 5, "float32")
    pipe = pipeline(
        MLPClassifier((10,), max_iter=30, random_state=0), X, targets("multiclass-str", X)
    )
    options = {MLPClassifier: {"zipmap": False, "nocl": True}}
    out = run(skl2onnx.to_onnx(pipe, X[:1], options=options), X)
    assert out["label"].dtype == np.int64
    classes = list(pipe[-1].classes_)
    np.testing.assert_array_equal(out["label"], [classes.index(c) for c in pipe.predict(X)])


def test_skl2onnx_zipmap_on_double_input_refused(rng):
    skl2onnx = pytest.importorskip("skl2onnx")
    X = data(rng, 100, 5, "float64")
    pipe = pipeline(MLPClassifier((6,), max_iter=5, random_state=0), X, targets("binary-int", X))
    with pytest.raises(ValueError, match=r"ZipMap.*'zipmap': False"):
        skl2onnx.to_onnx(pipe, X[:1])


@pytest.mark.parametrize("outputs", [1, 2])
@pytest.mark.parametrize("dtype", DTYPES)
def test_skl2onnx_regressor_pipeline(rng, dtype, outputs):
    skl2onnx = pytest.importorskip("skl2onnx")
    X = data(rng, 200, 5, "float64")
    y = X[:, :outputs].sum(axis=1) if outputs == 1 else X[:, :outputs] * 3
    pipe = pipeline(
        MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, dtype=dtype, random_state=0), X, y
    )
    Xd = X.astype(dtype)
    out = run(skl2onnx.to_onnx(pipe, Xd[:1]), Xd)
    assert list(out) == ["variable"]
    assert_close(out["variable"], pipe.predict(Xd).reshape(200, outputs).astype(dtype), dtype)


def test_skl2onnx_converters_registered():
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx._supported_operators import sklearn_operator_name_map

    assert sklearn_operator_name_map[MLPClassifier] == "MlpfastMLPClassifier"
    assert sklearn_operator_name_map[MLPRegressor] == "MlpfastMLPRegressor"
    assert skl2onnx is not None


# --------------------------------------------------------------------------- files and refusals
def test_path_writes_the_model(tmp_path, rng):
    model = mlpfast.MLP([3, 4, 2], activation="relu", seed=0)
    for path in (tmp_path / "a.onnx", str(tmp_path / "b.onnx")):
        proto = mlpfast.to_onnx(model, path)
        assert onnx.load(path) == proto
    X = data(rng, 10, 3, "float32")
    session = ort.InferenceSession(str(tmp_path / "a.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_array_equal(session.run(["label"], {"X": X})[0], model.predict(X))


def test_no_path_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mlpfast.to_onnx(mlpfast.MLP([3, 2], seed=0))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [42, "model.onnx", None, mlpfast.Linear(3, 2)])
def test_not_a_model(bad):
    with pytest.raises(TypeError, match=r"model to be an mlpfast.MLP or a fitted .*got "):
        mlpfast.to_onnx(bad)


def test_scikit_learns_own_estimator_refused():
    from sklearn.neural_network import MLPClassifier as SkMLPClassifier

    with pytest.raises(TypeError, match=r"sklearn\.neural_network"):
        mlpfast.to_onnx(SkMLPClassifier())


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_unfitted_estimator(cls):
    with pytest.raises(NotFittedError):
        mlpfast.to_onnx(cls())


def test_bad_path():
    with pytest.raises(TypeError, match=r"path to be a str or os\.PathLike, got 3"):
        mlpfast.to_onnx(mlpfast.MLP([3, 2], seed=0), 3)


def test_non_integral_float_classes(rng):
    # scikit-learn fits no such classes; ONNX labels are int64 or strings, so a classes_
    # set otherwise is refused by name.
    X = data(rng, 60, 3, "float64")
    clf = fitted(MLPClassifier((4,), max_iter=3, random_state=0), X, targets("binary-int", X))
    clf.classes_ = np.array([0.5, 1.5])
    with pytest.raises(ValueError, match=r"classes_ of integers.*got array\(\[0\.5, 1\.5\]\)"):
        mlpfast.to_onnx(clf)


def test_without_onnx(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    with pytest.raises(ImportError, match=r"needs onnx: pip install 'onnx>=1\.16'"):
        mlpfast.to_onnx(mlpfast.MLP([3, 2], seed=0))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_vanishes_from_the_graph(rng, dtype):
    # The graph predicts, as predict does: in evaluation mode, where dropout is the identity.
    X = data(rng, 60, 4, dtype)
    m = mlpfast.MLP([4, 8, 8, 3], dropout=0.5, dtype=dtype, seed=0)
    m.fit(X, np.arange(60) % 3, epochs=2, batch_size=10, seed=1)
    out = run(mlpfast.to_onnx(m), X)
    assert_close(out["probabilities"], m.predict_proba(X), dtype)
    np.testing.assert_array_equal(out["label"], m.predict(X))


LAZY_REGISTRATION = """
import importlib.util, sys, warnings
import numpy as np
{first}
import mlpfast.sklearn
assert ("skl2onnx" in sys.modules) == {imported!r}, "mlpfast.sklearn imported skl2onnx"
{probe}
import skl2onnx
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from mlpfast.sklearn import MLPClassifier
X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
y = np.arange(60) % 3
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pipe = make_pipeline(StandardScaler(), MLPClassifier(max_iter=5, random_state=0)).fit(X, y)
ops = {{n.op_type for n in skl2onnx.to_onnx(pipe, X[:1]).graph.node}}
assert "Gemm" in ops, ops  # the estimator's layers, by mlpfast's converter
"""


@pytest.mark.parametrize("order", ["skl2onnx first", "skl2onnx after", "probed, then imported"])
def test_skl2onnx_converters_register_whichever_is_imported_first(order):
    # Importing mlpfast.sklearn does not import skl2onnx (about half a second, onnx with it);
    # the converters register when skl2onnx is imported, before or after, also when a
    # find_spec probe ("is it installed?") looked it up first without loading it.
    import subprocess
    import sys

    first = order == "skl2onnx first"
    code = LAZY_REGISTRATION.format(
        first="import skl2onnx" if first else "",
        imported=first,
        probe='assert importlib.util.find_spec("skl2onnx") is not None'
        if "probed" in order
        else "",
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
