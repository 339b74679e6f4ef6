"""sample_weight and class_weight on the estimators: scikit-learn 1.7's semantics.

With float64, no shuffling and scikit-learn's initialization, a weighted run is scikit-learn's
own weighted run (sgd, adam, lbfgs, early stopping, partial_fit); class_weight is
compute_class_weight's factors multiplied into sample_weight; weights reach fit through
metadata routing and meta-estimators that weigh samples (AdaBoost).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import sklearn
from sklearn.datasets import load_breast_cancer, load_diabetes, load_wine
from sklearn.ensemble import AdaBoostClassifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.preprocessing import StandardScaler
from sklearn.utils.class_weight import compute_sample_weight

from mlpfast.sklearn import MLPClassifier, MLPRegressor


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True)
    w = np.random.default_rng(0).uniform(0.2, 3.0, len(y))
    return StandardScaler().fit_transform(X), y, w


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    w = np.random.default_rng(1).uniform(0.2, 3.0, len(y))
    return StandardScaler().fit_transform(X), y, w


@pytest.fixture(scope="module")
def diabetes():
    X, y = load_diabetes(return_X_y=True)
    w = np.random.default_rng(2).uniform(0.2, 3.0, len(y))
    return StandardScaler().fit_transform(X), (y - y.mean()) / y.std(), w


def quiet(call, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return call(*args, **kw)


def same_bits(a, b):
    return all(
        np.array_equal(p, q) for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_)
    )


SAME = dict(alpha=1e-3, batch_size=32, shuffle=False, max_iter=40, tol=1e-3, random_state=0)
RUNS = {
    "sgd-nesterov": {"solver": "sgd", "learning_rate_init": 0.01},
    "sgd-plain": {"solver": "sgd", "momentum": 0.0, "learning_rate_init": 0.05},
    "adam": {"solver": "adam", "learning_rate_init": 0.003},
}


def assert_same_run(ours, ref, adam):
    # As the unweighted runs (tests/test_sklearn_classifier.py): Adam differs only in where
    # epsilon sits (PyTorch's form vs scikit-learn's).
    tol = 1e-5 if adam else 1e-9
    assert ours.n_iter_ == ref.n_iter_ and ours.t_ == ref.t_
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=tol, atol=tol)
    for a, b in zip(ours.coefs_ + ours.intercepts_, ref.coefs_ + ref.intercepts_):
        np.testing.assert_allclose(a, b, rtol=1e-3 if adam else 1e-8, atol=1e-4 if adam else 1e-12)


@pytest.mark.parametrize("name", list(RUNS))
def test_weighted_classifier_run_is_sklearns(wine, name):
    X, y, w = wine
    kw = {"hidden_layer_sizes": (20,), **SAME, **RUNS[name]}
    ours = quiet(MLPClassifier(dtype="float64", **kw).fit, X, y, sample_weight=w)
    ref = quiet(SkMLPClassifier(**kw).fit, X, y, sample_weight=w)
    assert_same_run(ours, ref, name == "adam")
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))
    assert ours.score(X, y, sample_weight=w) == ref.score(X, y, sample_weight=w)


@pytest.mark.parametrize("name", list(RUNS))
def test_weighted_regressor_run_is_sklearns(diabetes, name):
    X, y, w = diabetes
    Y = np.column_stack([y, 0.5 * y + 0.1 * X[:, 0]])  # two outputs
    kw = {"hidden_layer_sizes": (16,), **SAME, **RUNS[name]}
    ours = quiet(MLPRegressor(dtype="float64", **kw).fit, X, Y, sample_weight=w)
    ref = quiet(SkMLPRegressor(**kw).fit, X, Y, sample_weight=w)
    assert_same_run(ours, ref, name == "adam")
    assert ours.score(X, Y, sample_weight=w) == pytest.approx(
        ref.score(X, Y, sample_weight=w), rel=1e-5 if name == "adam" else 1e-8
    )


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weighted_early_stopping_is_sklearns(cancer, solver):
    # The weights split with the rows; the validation score is the weighted accuracy.
    X, y, w = cancer
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
    ours = quiet(MLPClassifier(dtype="float64", **kw).fit, X, y, sample_weight=w)
    ref = quiet(SkMLPClassifier(**kw).fit, X, y, sample_weight=w)
    assert ours.n_iter_ == ref.n_iter_ < 60
    np.testing.assert_allclose(ours.validation_scores_, ref.validation_scores_, rtol=1e-12)
    assert ours.best_validation_score_ == pytest.approx(ref.best_validation_score_, rel=1e-12)
    np.testing.assert_allclose(ours.loss_curve_, ref.loss_curve_, rtol=1e-5)


def test_weighted_lbfgs_is_sklearns(wine):
    X, y, w = wine
    kw = dict(hidden_layer_sizes=(10,), solver="lbfgs", alpha=1e-2, max_iter=40, random_state=0)
    ours = quiet(MLPClassifier(dtype="float64", **kw).fit, X, y, sample_weight=w)
    ref = quiet(SkMLPClassifier(**kw).fit, X, y, sample_weight=w)
    assert ours.n_iter_ == ref.n_iter_
    assert ours.loss_ == pytest.approx(ref.loss_, rel=1e-6)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
def test_weighted_partial_fit_is_sklearns(wine, solver):
    X, y, w = wine
    kw = dict(hidden_layer_sizes=(12,), solver=solver, shuffle=False, random_state=0, alpha=1e-3)
    ours = MLPClassifier(dtype="float64", **kw)
    ref = SkMLPClassifier(**kw)
    for lo in range(0, len(y), 60):
        part = slice(lo, lo + 60)
        ours.partial_fit(X[part], y[part], classes=np.unique(y), sample_weight=w[part])
        ref.partial_fit(X[part], y[part], classes=np.unique(y), sample_weight=w[part])
    assert_same_run(ours, ref, solver == "adam")


def test_weights_of_one_are_no_weights(wine):
    X, y, _ = wine
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = quiet(MLPClassifier(**kw).fit, X, y)
    b = quiet(MLPClassifier(**kw).fit, X, y, sample_weight=np.ones(len(y)))
    assert same_bits(a, b) and a.loss_curve_ == b.loss_curve_


# --------------------------------------------------------------------------- class_weight
@pytest.mark.parametrize("class_weight", ["balanced", {0: 3.0, 2: 0.5}])
@pytest.mark.parametrize("with_sample_weight", [False, True])
def test_class_weight_multiplies_into_sample_weight(wine, class_weight, with_sample_weight):
    X, y, w = wine
    sw = w if with_sample_weight else None
    # scikit-learn's meaning: compute_class_weight's factors, "balanced" counting the
    # classes with the sample weights (as LogisticRegression does).
    from sklearn.utils.class_weight import compute_class_weight

    classes = np.unique(y)
    per_class = compute_class_weight(class_weight, classes=classes, y=y, sample_weight=sw)
    factors = per_class[np.searchsorted(classes, y)]
    expected = factors if sw is None else sw * factors
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = quiet(MLPClassifier(class_weight=class_weight, **kw).fit, X, y, sample_weight=sw)
    b = quiet(MLPClassifier(**kw).fit, X, y, sample_weight=expected)
    assert same_bits(a, b) and a.loss_curve_ == b.loss_curve_


@pytest.mark.parametrize("class_weight", ["balanced", [{1: 2.0}, {0: 0.5}, {1: 3.0}]])
def test_multilabel_class_weight_is_compute_sample_weight(wine, class_weight):
    X, y, _ = wine
    Y = np.eye(3, dtype=int)[y]
    Y[::7, 0] = 1  # some rows carry two labels
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = quiet(MLPClassifier(class_weight=class_weight, **kw).fit, X, Y)
    b = quiet(MLPClassifier(**kw).fit, X, Y, sample_weight=compute_sample_weight(class_weight, Y))
    assert same_bits(a, b)


def test_balanced_is_n_over_k_times_count(wine):
    X, y, _ = wine
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    counts = np.bincount(y)
    by_hand = (len(y) / (len(counts) * counts))[y]
    np.testing.assert_array_equal(by_hand, compute_sample_weight("balanced", y))
    a = quiet(MLPClassifier(class_weight="balanced", **kw).fit, X, y)
    b = quiet(MLPClassifier(**kw).fit, X, y, sample_weight=by_hand)
    assert same_bits(a, b)


def test_class_weight_with_string_labels_and_binary(cancer):
    X, y, _ = cancer
    labels = np.array(["benign", "malignant"])[y]
    kw = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0)
    a = quiet(MLPClassifier(class_weight={"malignant": 4.0}, **kw).fit, X, labels)
    b = quiet(MLPClassifier(**kw).fit, X, labels, sample_weight=np.where(y == 1, 4.0, 1.0))
    assert same_bits(a, b)


def test_class_weight_helps_the_rare_class():
    # An imbalanced problem: balanced class weights raise the rare class's recall.
    rng = np.random.default_rng(3)
    n = 2000
    y = (rng.uniform(size=n) < 0.05).astype(int)
    X = rng.standard_normal((n, 6)) + 1.0 * y[:, None]
    kw = dict(hidden_layer_sizes=(16,), max_iter=30, random_state=0)
    plain = quiet(MLPClassifier(**kw).fit, X, y)
    balanced = quiet(MLPClassifier(class_weight="balanced", **kw).fit, X, y)

    def recall(est):
        return float(np.mean(est.predict(X[y == 1]) == 1))

    assert recall(balanced) > recall(plain) + 0.2, (recall(plain), recall(balanced))


def test_class_weight_refusals(wine):
    X, y, _ = wine
    kw = dict(hidden_layer_sizes=(4,), max_iter=2)
    with pytest.raises(ValueError, match="'class_weight' parameter must be None, 'balanced', a"):
        MLPClassifier(class_weight="even", **kw).fit(X, y)
    with pytest.raises(ValueError, match="class_weight: a list of dicts is for multilabel"):
        MLPClassifier(class_weight=[{0: 1.0}], **kw).fit(X, y)
    with pytest.raises(ValueError, match="For multi-output, class_weight should be a list of"):
        MLPClassifier(class_weight={0: 2.0}, **kw).fit(X, np.eye(3)[y])
    est = MLPClassifier(class_weight="balanced", **kw)
    with pytest.raises(ValueError, match="class_weight='balanced' needs the class frequencies"):
        est.partial_fit(X, y, classes=np.unique(y))
    assert not hasattr(est, "coefs_")  # refused before any work
    # A dict naming a class that is not there: scikit-learn's own error.
    with pytest.raises(ValueError, match=r"The classes, \[0, 1, 2\], are not in class_weight"):
        MLPClassifier(class_weight={7: 2.0}, **kw).fit(X, y)


def test_bad_sample_weight_leaves_the_estimator_unchanged(wine):
    X, y, _ = wine
    est = quiet(MLPClassifier(hidden_layer_sizes=(4,), max_iter=3, random_state=0).fit, X, y)
    before = [c.copy() for c in est.coefs_]
    for bad, match in [
        (np.ones(len(y) - 1), "sample_weight"),
        (-np.ones(len(y)), "[Nn]egative|sample_weight"),
        (np.zeros(len(y)), "Sample weights must contain at least one non-zero number"),
        (np.full(len(y), np.nan), "NaN"),
    ]:
        with pytest.raises(ValueError, match=match):
            est.fit(X, y, sample_weight=bad)
        assert all(np.array_equal(a, b) for a, b in zip(before, est.coefs_))


# --------------------------------------------------------------------------- the ecosystem
def test_metadata_routing_passes_the_weights(wine):
    X, y, w = wine
    kw = dict(hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    cv = KFold(3, shuffle=True, random_state=0)
    with sklearn.config_context(enable_metadata_routing=True):
        est = (
            MLPClassifier(**kw)
            .set_fit_request(sample_weight=True)
            .set_score_request(sample_weight=True)
        )
        got = quiet(cross_validate, est, X, y, cv=cv, params={"sample_weight": w})["test_score"]
        grid = GridSearchCV(est, {"alpha": [1e-4, 1e-2]}, cv=cv)
        quiet(grid.fit, X, y, sample_weight=w)
    for score, (train, test) in zip(got, cv.split(X)):
        alone = quiet(MLPClassifier(**kw).fit, X[train], y[train], sample_weight=w[train])
        assert score == alone.score(X[test], y[test], sample_weight=w[test])
    assert grid.best_params_["alpha"] in (1e-4, 1e-2)


def test_adaboost_weighs_its_estimators(cancer):
    X, y, _ = cancer
    boost = AdaBoostClassifier(
        MLPClassifier(hidden_layer_sizes=(4,), max_iter=20, random_state=0),
        n_estimators=3,
        random_state=0,
    )
    quiet(boost.fit, X, y)
    assert len(boost.estimators_) >= 2
    # Each later estimator saw other weights than the first: they differ.
    a, b = boost.estimators_[:2]
    assert not same_bits(a, b)
    assert boost.score(X, y) > 0.9
