"""The estimators' fast path for plain numpy input to predict keeps every scikit-learn check.

A 2-d numpy array of numbers with the fitted number of columns skips ``validate_data``'s
work (one-row prediction in microseconds); these tests show that every answer, error and
warning is still the one the full validation gives.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn.exceptions import NotFittedError

from mlpfast.sklearn import MLPClassifier, MLPRegressor


def fitted(cls, rng, dtype="float32", **kw):
    X = rng.standard_normal((60, 4))
    y = rng.integers(0, 3, 60) if cls is MLPClassifier else rng.standard_normal(60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype=dtype, **kw).fit(
            X, y
        ), X


def slow(est, method, X):
    """The same call through validate_data."""
    return getattr(est._mlp, method)(est._check_x(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_numeric_layout_gives_the_validated_answer(rng, dtype):
    clf, X = fitted(MLPClassifier, rng, dtype)
    reg, _ = fitted(MLPRegressor, rng, dtype)
    variants = [
        X,
        X.astype(np.float32),
        np.asfortranarray(X),
        X[::2],
        X[:, ::-1].copy()[:, ::-1],
        np.round(X * 3).astype(np.int64),
        X > 0,
        X[:1],
    ]
    for V in variants:
        np.testing.assert_array_equal(clf.predict_proba(V), slow(clf, "predict_proba", V))
        np.testing.assert_array_equal(clf.predict(V), clf.classes_[slow(clf, "predict", V)])
        np.testing.assert_array_equal(reg.predict(V), slow(reg, "predict", V).ravel())


def test_refusals_are_scikit_learns(rng):
    clf, X = fitted(MLPClassifier, rng)
    bad = X[:3].copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        clf.predict(bad)
    bad[1, 2] = np.inf
    with pytest.raises(ValueError, match="Input X contains infinity"):
        clf.predict_proba(bad)
    # Finite in float64, infinite once converted to the model's float32 (numpy warns of the
    # overflow, as it does inside validate_data).
    with (
        pytest.warns(RuntimeWarning, match="overflow"),
        pytest.raises(ValueError, match="Input X contains infinity or a value too large"),
    ):
        clf.predict(np.full((1, 4), 1e300))
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 4"):
        clf.predict(X[:, :3])
    with pytest.raises(ValueError, match="Found array with 0 sample"):
        clf.predict(X[:0])
    with pytest.raises(ValueError, match="Expected 2D array"):
        clf.predict(X[0])
    with pytest.raises(ValueError, match="Complex data not supported"):
        clf.predict(X.astype(np.complex128))
    with pytest.raises(NotFittedError):
        MLPClassifier().predict(X)
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)


def test_feature_names_are_still_compared(rng):
    pd = pytest.importorskip("pandas")
    clf, X = fitted(MLPClassifier, rng)
    frame = pd.DataFrame(X, columns=list("abcd"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf.fit(frame, rng.integers(0, 3, 60))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        clf.predict(X)
    with pytest.raises(ValueError, match="feature names should match"):
        clf.predict(frame[list("dcba")])
