"""mlpfast.sklearn.MLPClassifier: scikit-learn's semantics, labels, targets, attributes."""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.datasets import load_breast_cancer, load_wine, make_multilabel_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.preprocessing import StandardScaler

from mlpfast.sklearn import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def blobs(rng, n=150, k=3, d=4):
    centers = 4.0 * rng.standard_normal((k, d))
    y = rng.integers(0, k, n)
    return centers[y] + rng.standard_normal((n, d)), y


def quiet_fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y, **kw)


# --------------------------------------------------------------------------- same as sklearn
# With float64, no shuffling, scikit-learn's weight initialization drawn from the same
# random_state and scikit-learn's loss, L2, optimizer and stopping rule, the training run is
# scikit-learn's own, step for step.
# (mlpfast's momentum keeps its velocity in gradient units, as PyTorch, scikit-learn in step
# units: the two agree while the learning rate is constant, hence no momentum below for the
# schedules that change it.)
SAME_RUNS = {
    "sgd-nesterov": {"solver": "sgd", "learning_rate_init": 0.01},
    "sgd-momentum": {"solver": "sgd", "nesterovs_momentum": False, "learning_rate_init": 0.01},
    "sgd-plain": {"solver": "sgd", "momentum": 0.0, "learning_rate_init": 0.05},
    "sgd-invscaling": {
        "solver": "sgd",
        "learning_rate": "invscaling",
        "power_t": 0.25,
        "learning_rate_init": 0.05,
        "momentum": 0.0,
    },
    "sgd-adaptive": {
        "solver": "sgd",
        "learning_rate": "adaptive",
        "learning_rate_init": 0.1,
        "momentum": 0.0,
        "tol": 1e-2,
        "max_iter": 80,
    },
    "adam": {"solver": "adam", "learning_rate_init": 0.003},
}


@pytest.mark.parametrize("name", list(SAME_RUNS))
def test_multiclass_run_is_sklearns(wine, name):
    X, y = wine
    kw = {
        "hidden_layer_sizes": (20,),
        "alpha": 1e-3,
        "batch_size": 32,
        "shuffle": False,
        "max_iter": 60,
        "tol": 1e-3,
        "random_state": 0,
        **SAME_RUNS[name],
    }
    ours = quiet_fit(MLPClassifier(dtype="float64", **kw), X, y)
    ref = quiet_fit(SkMLPClassifier(**kw), X, y)
    assert ours.n_iter_ == ref.n_iter_
    if name == "sgd-adaptive":
        # The rule fired and divided the rate instead of stopping: the rate is now smaller.
        assert ours._mlp.learning_rate < 0.1
    assert ours.t_ == ref.t_
    # Adam differs only in where epsilon sits (PyTorch's form vs scikit-learn's).
    tol = 1e-5 if name == "adam" else 1e-9
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=tol, atol=tol)
    assert ours.loss_ == pytest.approx(ref.loss_, rel=tol)
    assert ours.best_loss_ == pytest.approx(ref.best_loss_, rel=tol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-3 if name == "adam" else 1e-8, atol=1e-4)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-4)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_binary_early_stopping_run_is_sklearns(cancer, solver):
    # Same split (stratified, from the same generator), same validation scores, and the
    # best validation weights restored at the end, as scikit-learn does.
    X, y = cancer
    kw = dict(
        hidden_layer_sizes=(20,),
        solver=solver,
        alpha=1e-3,
        batch_size=32,
        shuffle=False,
        max_iter=60,
        tol=1e-3,
        random_state=0,
        early_stopping=True,
        learning_rate_init=0.01,
    )
    ours = quiet_fit(MLPClassifier(dtype="float64", **kw), X, y)
    ref = quiet_fit(SkMLPClassifier(**kw), X, y)
    assert ours.n_iter_ == ref.n_iter_ < 60  # the rule fired
    assert ours.validation_scores_ == ref.validation_scores_
    assert ours.best_validation_score_ == ref.best_validation_score_
    assert ours.best_loss_ is None and ref.best_loss_ is None
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-5)
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def test_lbfgs_run_is_sklearns(wine):
    X, y = wine
    kw = dict(hidden_layer_sizes=(10,), solver="lbfgs", alpha=1e-2, max_iter=40, random_state=0)
    ours = quiet_fit(MLPClassifier(dtype="float64", **kw), X, y)
    ref = quiet_fit(SkMLPClassifier(**kw), X, y)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)
    assert not hasattr(ours, "loss_curve_")  # as scikit-learn: no epochs, no curve
    assert not hasattr(ours, "partial_fit")


@pytest.mark.parametrize(
    "settings",
    [
        # Momentum velocities carry over between calls...
        {"solver": "sgd", "learning_rate_init": 0.01},
        # ... Adam's moments and step count too...
        {"solver": "adam", "learning_rate_init": 0.01},
        # ... and the invscaling rate goes on from the samples seen.
        {"solver": "sgd", "learning_rate": "invscaling", "momentum": 0.0},
    ],
    ids=["momentum", "adam", "invscaling"],
)
def test_partial_fit_continues_the_optimizer_as_sklearn(wine, settings):
    X, y = wine
    kw = {
        "hidden_layer_sizes": (16,),
        "learning_rate_init": 0.05,
        "shuffle": False,
        "batch_size": 40,
        "random_state": 0,
        **settings,
    }
    ours = MLPClassifier(dtype="float64", **kw)
    ref = SkMLPClassifier(**kw)
    for _ in range(5):
        ours.partial_fit(X, y, classes=np.unique(y))
        ref.partial_fit(X, y, classes=np.unique(y))
        assert ours.n_iter_ == ref.n_iter_ == 1
    assert ours.t_ == ref.t_ == 5 * len(X)
    # Five partial_fit calls are one five-epoch fit: the optimizer state carried over.
    whole = MLPClassifier(dtype="float64", max_iter=5, n_iter_no_change=np.inf, **kw)
    quiet_fit(whole, X, y)
    np.testing.assert_allclose(ours.loss_curve_, whole.loss_curve_, rtol=1e-12)
    np.testing.assert_allclose(ours.coefs_[0], whole.coefs_[0], rtol=1e-10, atol=1e-14)
    # And scikit-learn's run. Adam: up to where epsilon sits (PyTorch's form, which
    # mlpfast follows exactly, vs scikit-learn's), felt by near-zero gradients at lr=0.05.
    if settings["solver"] == "adam":
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=2e-3)
    else:
        np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
        np.testing.assert_allclose(ours.coefs_[0], ref.coefs_[0], rtol=1e-8, atol=1e-12)


def test_warm_start_continues_with_a_new_optimizer_as_sklearn(wine):
    X, y = wine
    kw = dict(
        hidden_layer_sizes=(16,),
        solver="sgd",
        shuffle=False,
        max_iter=4,
        random_state=0,
        warm_start=True,
        learning_rate_init=0.02,
    )
    ours = MLPClassifier(dtype="float64", **kw)
    ref = SkMLPClassifier(**kw)
    for _ in range(3):
        quiet_fit(ours, X, y)
        quiet_fit(ref, X, y)
    assert len(ours.loss_curve_) == 12 and ours.n_iter_ == 4 and ours.t_ == 12 * len(X)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-9)
    # Without warm_start, fit starts over: the same first epoch every time.
    cold = MLPClassifier(dtype="float64", **{**kw, "warm_start": False})
    first = quiet_fit(cold, X, y).loss_curve_[0]
    assert quiet_fit(cold, X, y).loss_curve_[0] == first
    assert len(cold.loss_curve_) == 4


# --------------------------------------------------------------------------- targets and labels
@pytest.mark.parametrize(
    "labels",
    [
        np.array(["cat", "dog", "emu"]),
        np.array([-5, 7, 20]),
        np.array(["x", "yy", "zzz"], dtype=object),
    ],
    ids=["str", "int", "object"],
)
def test_multiclass_labels(rng, labels):
    X, idx = blobs(rng)
    y = labels[idx]
    clf = quiet_fit(MLPClassifier((16,), max_iter=100, random_state=0), X, y)
    np.testing.assert_array_equal(clf.classes_, np.sort(labels))
    assert clf.out_activation_ == "softmax"
    assert clf.n_outputs_ == 3 and clf.n_layers_ == 3
    assert [c.shape for c in clf.coefs_] == [(4, 16), (16, 3)]
    assert [b.shape for b in clf.intercepts_] == [(16,), (3,)]
    pred = clf.predict(X)
    assert pred.dtype == clf.classes_.dtype
    assert set(pred) <= set(labels)
    assert clf.score(X, y) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    # Columns follow classes_: the most probable column is the predicted class.
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], pred)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(proba), rtol=1e-6)


@pytest.mark.parametrize("labels", [np.array([False, True]), np.array(["no", "yes"])])
def test_binary_has_one_logistic_output(rng, labels):
    X, idx = blobs(rng, k=2)
    y = labels[idx]
    clf = MLPClassifier((8,), learning_rate_init=0.02, max_iter=200, random_state=0)
    quiet_fit(clf, X, y)
    assert clf.out_activation_ == "logistic"
    assert clf.n_outputs_ == 1 and clf.coefs_[-1].shape == (8, 1)
    assert clf._mlp.loss_name == "bce"
    np.testing.assert_array_equal(clf.classes_, labels)
    pred = clf.predict(X)
    assert pred.dtype == labels.dtype
    assert clf.score(X, y) > 0.95
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    # p = sigmoid of the one output; predicted class 1 exactly when p > 0.5.
    z = clf._mlp.forward(X.astype(np.float32))[:, 0]
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-5)
    np.testing.assert_array_equal(pred, labels[(z > 0).astype(int)])


def test_multilabel_indicator():
    X, Y = make_multilabel_classification(n_samples=300, n_classes=4, random_state=0)
    X = StandardScaler().fit_transform(X)
    kw = dict(hidden_layer_sizes=(32,), max_iter=150, random_state=0)
    clf = quiet_fit(MLPClassifier(**kw), X, Y)
    np.testing.assert_array_equal(clf.classes_, np.arange(4))
    assert clf.out_activation_ == "logistic" and clf.n_outputs_ == 4
    pred = clf.predict(X)
    assert pred.shape == Y.shape and set(np.unique(pred)) <= {0, 1}
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and np.all((proba >= 0) & (proba <= 1))
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    # Subset accuracy, as scikit-learn's (which reaches about the same).
    ref = quiet_fit(SkMLPClassifier(**kw), X, Y)
    assert clf.score(X, Y) == pytest.approx(np.mean(np.all(pred == Y, axis=1)))
    assert clf.score(X, Y) >= ref.score(X, Y) - 0.05


def test_hinge_loss_is_the_multiclass_svm(rng):
    X, y = blobs(rng)
    clf = quiet_fit(MLPClassifier((16,), loss="hinge", max_iter=100, random_state=0), X, y)
    assert clf._mlp.loss_name == "svm"
    assert clf.out_activation_ == "identity"
    assert clf.score(X, y) > 0.95
    assert not hasattr(clf, "predict_proba") and not hasattr(clf, "predict_log_proba")
    scores = clf.decision_function(X)
    assert scores.shape == (len(X), 3)
    np.testing.assert_array_equal(clf.classes_[scores.argmax(axis=1)], clf.predict(X))
    # Binary targets get one score per class under the hinge loss; decision_function gives
    # the second minus the first, as scikit-learn's binary convention.
    yb = np.where(y == 0, "a", "b")
    quiet_fit(clf, X, yb)
    assert clf.n_outputs_ == 2 and clf.score(X, yb) > 0.95
    d = clf.decision_function(X)
    assert d.shape == (len(X),)
    np.testing.assert_array_equal(np.where(d > 0, "b", "a"), clf.predict(X))
    assert not hasattr(MLPClassifier(), "decision_function")


@pytest.mark.parametrize(
    "activation", ["identity", "logistic", "tanh", "relu", "leaky_relu", "elu"]
)
def test_activations(rng, activation):
    X, y = blobs(rng)
    clf = quiet_fit(MLPClassifier((12,), activation=activation, random_state=0), X, y)
    native = {"logistic": "sigmoid"}.get(activation, activation)
    assert clf._mlp.activation == native
    assert clf.score(X, y) > 0.9


def test_maxout_coefs_are_three_dimensional(rng):
    X, y = blobs(rng)
    clf = quiet_fit(MLPClassifier((12, 6), activation="maxout", random_state=0), X, y)
    assert [c.shape for c in clf.coefs_] == [(2, 4, 12), (2, 12, 6), (6, 3)]
    assert [b.shape for b in clf.intercepts_] == [(2, 12), (2, 6), (3,)]
    assert clf.score(X, y) > 0.9


def test_dtype(rng):
    X, y = blobs(rng)
    for dtype in ("float32", "float64", np.float64):
        clf = quiet_fit(MLPClassifier((8,), dtype=dtype, max_iter=20, random_state=0), X, y)
        want = np.dtype(dtype)
        assert all(c.dtype == want for c in clf.coefs_ + clf.intercepts_)
        assert clf.predict_proba(X).dtype == want


def test_coefs_are_the_networks_memory(rng):
    X, y = blobs(rng)
    clf = quiet_fit(MLPClassifier((8,), max_iter=30, random_state=0), X, y)
    before = clf.predict_proba(X)
    clf.coefs_[-1][...] = 0.0
    clf.intercepts_[-1][...] = 0.0
    np.testing.assert_allclose(clf.predict_proba(X), 1 / 3, rtol=1e-6)
    assert not np.allclose(before, 1 / 3)


# --------------------------------------------------------------------------- training rules
def test_stopping_rule_and_convergence_warning(wine):
    X, y = wine
    clf = MLPClassifier((16,), learning_rate_init=0.01, max_iter=500, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        clf.fit(X, y)  # converges: the training-loss rule stops it, no warning
    assert clf.n_iter_ < 500
    assert clf.best_loss_ == min(clf.loss_curve_)
    assert clf.validation_scores_ is None and clf.best_validation_score_ is None
    tail = np.array(clf.loss_curve_[-11:])
    assert np.all(tail > clf.best_loss_ - clf.tol)  # the last 11 epochs did not improve
    # No rule: every epoch runs, and the maximum warns as scikit-learn does.
    never = MLPClassifier((16,), n_iter_no_change=np.inf, max_iter=30, random_state=0)
    with pytest.warns(ConvergenceWarning, match="Maximum iterations") as record:
        never.fit(X, y)
    assert never.n_iter_ == 30
    # The warning points at the line that called fit, as scikit-learn's does.
    assert [w.filename for w in record] == [__file__]


def test_early_stopping_attributes(wine):
    X, y = wine
    clf = quiet_fit(
        MLPClassifier(
            (16,), early_stopping=True, validation_fraction=0.2, max_iter=300, random_state=0
        ),
        X,
        y,
    )
    assert len(clf.validation_scores_) == len(clf.loss_curve_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    assert clf.t_ == clf.n_iter_ * (len(X) - int(np.ceil(0.2 * len(X))))
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        clf.partial_fit(X, y)


def test_batch_size(rng):
    X, y = blobs(rng, n=50)
    with pytest.warns(UserWarning, match="clipped"):
        quiet_fit(MLPClassifier((4,), batch_size=500, max_iter=2, random_state=0), X, y)
    clf = quiet_fit(MLPClassifier((4,), batch_size=7, max_iter=2, random_state=0), X, y)
    assert clf.t_ == 100


def test_random_state(rng):
    X, y = blobs(rng)
    a = quiet_fit(MLPClassifier((8,), max_iter=10, random_state=3), X, y)
    b = quiet_fit(MLPClassifier((8,), max_iter=10, random_state=3), X, y)
    c = quiet_fit(MLPClassifier((8,), max_iter=10, random_state=4), X, y)
    np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    assert not np.array_equal(a.coefs_[0], c.coefs_[0])


# --------------------------------------------------------------------------- partial_fit etc.
def test_partial_fit_classes(rng):
    X, y = blobs(rng)
    clf = MLPClassifier((8,), learning_rate_init=0.05, random_state=0)
    with pytest.raises(ValueError, match="classes must be passed"):
        clf.partial_fit(X, y)
    # The first batch may lack a class that comes later.
    clf.partial_fit(X[y < 2], y[y < 2], classes=[0, 1, 2])
    assert clf.n_outputs_ == 3
    clf.partial_fit(X, y)
    with pytest.raises(ValueError, match=r"not in `self\.classes_`"):
        clf.partial_fit(X, np.where(y == 0, 9, y))
    with pytest.raises(ValueError, match="is not the same"):
        clf.partial_fit(X, y, classes=[0, 1])
    for _ in range(30):
        clf.partial_fit(X, y)
    assert clf.score(X, y) > 0.9
    assert len(clf.loss_curve_) == 32 and clf.t_ == 32 * len(X) - np.sum(y == 2)


def test_warm_start_checks_classes_and_architecture(rng):
    X, y = blobs(rng)
    clf = quiet_fit(MLPClassifier((8,), max_iter=5, warm_start=True, random_state=0), X, y)
    with pytest.raises(ValueError, match="same classes"):
        clf.fit(X, np.where(y == 2, 1, y))
    clf.set_params(hidden_layer_sizes=(9,))
    with pytest.raises(ValueError, match="warm_start"):
        clf.fit(X, y)


def test_one_class_is_refused(rng):
    X, _ = blobs(rng, n=20)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(X, np.ones(20))


def test_continuous_targets_are_refused(rng):
    X, _ = blobs(rng, n=20)
    with pytest.raises(ValueError, match="Unknown label type"):
        MLPClassifier().fit(X, rng.standard_normal(20))


def test_sparse_input_is_densified(rng):
    sp = pytest.importorskip("scipy.sparse")
    X, y = blobs(rng)
    X[X < 0] = 0.0
    dense = quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), X, y)
    sparse = quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), sp.csr_matrix(X), y)
    np.testing.assert_array_equal(dense.coefs_[0], sparse.coefs_[0])
    np.testing.assert_array_equal(dense.predict(sp.csc_matrix(X)), dense.predict(X))


def test_feature_names_from_a_dataframe(rng):
    pd = pytest.importorskip("pandas")
    X, y = blobs(rng)
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = quiet_fit(MLPClassifier((8,), max_iter=20, random_state=0), df, y)
    np.testing.assert_array_equal(clf.feature_names_in_, ["a", "b", "c", "d"])
    assert clf.n_features_in_ == 4
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        np.testing.assert_array_equal(clf.predict(df), clf.predict(X))
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[["d", "c", "b", "a"]])


# --------------------------------------------------------------------------- parameters
@pytest.mark.parametrize(
    ("param", "value", "match"),
    [
        ("activation", "softplus", "'activation' parameter"),
        ("solver", "adagrad", "'solver' parameter"),
        ("loss", "squared_error", "'loss' parameter"),
        ("dtype", "float16", "'dtype' parameter"),
        ("hidden_layer_sizes", (10, 0), "hidden_layer_sizes must be > 0"),
        ("hidden_layer_sizes", "ten", "'hidden_layer_sizes' parameter"),
        ("alpha", -1.0, "'alpha' parameter"),
        ("batch_size", 0, "'batch_size' parameter"),
        ("learning_rate", "cyclic", "'learning_rate' parameter"),
        ("learning_rate_init", 0.0, "'learning_rate_init' parameter"),
        ("max_iter", 0, "'max_iter' parameter"),
        ("momentum", 1.5, "'momentum' parameter"),
        ("validation_fraction", 1.0, "'validation_fraction' parameter"),
        ("beta_1", 1.0, "'beta_1' parameter"),
        ("epsilon", 0.0, "'epsilon' parameter"),
        ("n_iter_no_change", 0, "'n_iter_no_change' parameter"),
        ("shuffle", "yes", "'shuffle' parameter"),
        # numpy's dtype parser raises SyntaxError, float() OverflowError, on these.
        ("dtype", [("a", "f4,(")], "'dtype' parameter"),
        ("dtype", ("f4", 10**12), "'dtype' parameter"),
        pytest.param("dtype", "(" * 5000 + "f4", "'dtype' parameter", id="dtype-nested"),
        pytest.param("alpha", 10**400, "'alpha' parameter must be a float", id="alpha-huge"),
        pytest.param("tol", -(10**400), "'tol' parameter must be a float", id="tol-huge"),
    ],
)
def test_bad_parameters_name_themselves(rng, param, value, match):
    X, y = blobs(rng, n=20)
    clf = MLPClassifier(**{param: value})
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)
    assert not hasattr(clf, "coefs_")


@pytest.mark.parametrize("cls", [MLPClassifier, MLPRegressor])
def test_unparsable_dtype_is_a_parameter_error(rng, cls):
    # numpy reads "f4,(" as a structured dtype and raises SyntaxError on its shape.
    X, y = blobs(rng, n=20)
    want = "The 'dtype' parameter must be 'float32' or 'float64'. Got 'f4,(' instead."
    with pytest.raises(ValueError, match=re.escape(want)):
        cls(dtype="f4,(").fit(X, y)


def test_sgd_momentum_one_is_refused(rng):
    X, y = blobs(rng, n=20)
    with pytest.raises(ValueError, match=r"'momentum' parameter must be a number in \[0, 1\)"):
        MLPClassifier(solver="sgd", momentum=1.0).fit(X, y)


@pytest.mark.parametrize("solver", ["adam", "lbfgs"])
def test_momentum_one_is_accepted_where_unused(rng, solver):
    # As scikit-learn: momentum in [0, 1] is valid for every solver; only sgd uses it.
    X, y = blobs(rng, n=20)
    ours = quiet_fit(MLPClassifier(solver=solver, momentum=1.0, max_iter=5, random_state=0), X, y)
    ref = quiet_fit(MLPClassifier(solver=solver, momentum=0.5, max_iter=5, random_state=0), X, y)
    for a, b in zip(ours.coefs_, ref.coefs_):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="'momentum' parameter"):
        MLPClassifier(solver=solver, momentum=1.5).fit(X, y)


def test_defaults_are_sklearns():
    ours = MLPClassifier().get_params()
    theirs = SkMLPClassifier().get_params()
    extra = set(ours) - set(theirs)
    assert extra == {"loss", "class_weight", "dtype", "dropout", "batch_norm"}
    assert {k: ours[k] for k in theirs} == theirs
    assert ours["loss"] == "log_loss" and ours["dtype"] == "float32"
    assert ours["class_weight"] is None and ours["dropout"] == 0.0


# --------------------------------------------------------------------------- refused calls
X4 = np.array([[0.1], [-0.1], [0.6], [0.1]])


def _fitted(cls, y):
    est = cls(hidden_layer_sizes=(3,), max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X4, y)


REFUSED = {
    # A fitted estimator's network must survive a refused fit or partial_fit.
    "regressor_y_beyond_float32": (
        lambda: _fitted(MLPRegressor, [0.0, 1, 2, 3]),
        lambda est: est.fit(X4, [1e39, 0.0, 0.0, 0.0]),
    ),
    "classifier_one_class": (
        lambda: _fitted(MLPClassifier, [0, 1, 1, 0]),
        lambda est: est.fit(X4, [0, 0, 0, 0]),
    ),
    "classifier_unseen_class": (
        lambda: _fitted(MLPClassifier, [0, 1, 1, 0]),
        lambda est: est.partial_fit(X4, [0, 1, 2, 0]),
    ),
    # An unfitted one must stay unfitted.
    "validation_set_too_small": (
        lambda: MLPClassifier(early_stopping=True, max_iter=3),
        lambda est: est.fit(X4, [0, 1, 1, 0]),
    ),
    "partial_fit_with_early_stopping": (
        lambda: MLPClassifier(early_stopping=True, max_iter=3),
        lambda est: est.partial_fit(X4, [0, 1, 1, 0], classes=[0, 1]),
    ),
    "bad_seed": (
        lambda: MLPClassifier(random_state=-1, max_iter=3),
        lambda est: est.fit(X4, [0, 1, 1, 0]),
    ),
    "fresh_one_class": (
        lambda: MLPClassifier(max_iter=3),
        lambda est: est.fit(X4, [0, 0, 0, 0]),
    ),
    "float32_epsilon": (
        lambda: MLPRegressor(solver="adam", epsilon=1e-46, dtype="float32"),
        lambda est: est.fit(X4, [0.0, 1, 2, 3]),
    ),
}


@pytest.mark.parametrize(("make", "call"), REFUSED.values(), ids=REFUSED.keys())
def test_a_refused_call_leaves_the_estimator_as_it_was(make, call):
    from sklearn.exceptions import NotFittedError

    est = make()
    fitted = hasattr(est, "coefs_")
    before = {k: v for k, v in vars(est).items() if k != "_mlp"}
    weights = [w.copy() for w in est.coefs_] if fitted else None
    with pytest.raises(ValueError):
        call(est)
    assert set(vars(est)) == set(before) | ({"_mlp"} if fitted else set())
    if fitted:
        for a, b in zip(weights, est.coefs_):
            np.testing.assert_array_equal(a, b)
        assert est.predict(X4).shape == (4,)
    else:
        with pytest.raises(NotFittedError):
            est.predict(X4)
