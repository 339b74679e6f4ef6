"""The seed files the loader's fuzzers mutate: one of every kind `mlpfast.save` writes.

MLPs of both dtypes and of maxout units, and fitted estimators with their fields (string
classes with early stopping, multilabel flags, feature names from a DataFrame). Used by
tests/test_fuzz_loader.py (hypothesis, in CI) and fuzz/fuzz_loader.py (atheris); without
scikit-learn only the MLP files are made, without pandas the regressor has no feature names.
"""

from __future__ import annotations

import warnings

import numpy as np

import mlpfast


def seed_files() -> list[bytes]:
    """Small valid files, each saved by mlpfast, so that mutating them stays quick."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    files = [
        mlpfast.io.to_bytes(mlpfast.MLP([3, 4, 2], activation="tanh", dtype="float32", seed=0)),
        mlpfast.io.to_bytes(mlpfast.MLP([3, 5, 2], loss="mse", dtype="float64", seed=1)),
        mlpfast.io.to_bytes(mlpfast.MLP([3, 4, 3, 2], activation="maxout", seed=2)),
    ]
    try:
        from mlpfast.sklearn import MLPClassifier, MLPRegressor
    except ImportError:  # scikit-learn not installed: the MLP files alone
        return files
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a few iterations do not converge
        labels = np.array(["ant", "bee", "cat"])[rng.integers(0, 3, 40)]
        clf = MLPClassifier(
            hidden_layer_sizes=(4,), max_iter=3, early_stopping=True, random_state=0
        )
        files.append(mlpfast.io.to_bytes(clf.fit(X, labels)))
        flags = MLPClassifier(
            hidden_layer_sizes=(3,), activation="maxout", dtype="float64", max_iter=2
        )
        files.append(mlpfast.io.to_bytes(flags.fit(X, rng.integers(0, 2, (40, 2)))))
        try:
            import pandas as pd

            features = pd.DataFrame(X, columns=["a", "b", "c"])
        except ImportError:
            features = X
        reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=2, random_state=0)
        files.append(mlpfast.io.to_bytes(reg.fit(features, rng.standard_normal(40))))
    return files
