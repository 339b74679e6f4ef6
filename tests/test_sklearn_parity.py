"""Held-out accuracy (R²) of mlpfast.sklearn against scikit-learn on its bundled data sets.

Same settings, same splits, scaled features, three random states each: mlpfast's mean
score must be within noise of scikit-learn's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

from sklearn import neural_network as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import mlpfast.sklearn as mf

SEEDS = (0, 1, 2)
CASES = {
    "digits": (load_digits, {"hidden_layer_sizes": (100,), "max_iter": 200}, 0.03),
    "wine": (load_wine, {"hidden_layer_sizes": (100,), "max_iter": 300}, 0.03),
    "breast_cancer": (load_breast_cancer, {"hidden_layer_sizes": (100,), "max_iter": 300}, 0.03),
    "diabetes": (
        load_diabetes,
        {"hidden_layer_sizes": (16,), "max_iter": 300, "learning_rate_init": 0.003, "alpha": 3.0},
        0.05,
    ),
}


def split(loader, regression):
    X, y = loader(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=None if regression else y
    )
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    if regression:
        mean, std = ytr.mean(), ytr.std()
        ytr, yte = (ytr - mean) / std, (yte - mean) / std
    return Xtr, Xte, ytr, yte


def mean_score(module, regression, settings, data):
    Xtr, Xte, ytr, yte = data
    cls = module.MLPRegressor if regression else module.MLPClassifier
    scores = []
    for seed in SEEDS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings, alike for both
            est = cls(random_state=seed, **settings).fit(Xtr, ytr)
        scores.append(est.score(Xte, yte))
    return float(np.mean(scores))


@pytest.mark.parametrize("name", list(CASES))
def test_score_within_noise_of_sklearn(name):
    loader, settings, margin = CASES[name]
    regression = name == "diabetes"
    data = split(loader, regression)
    ours = mean_score(mf, regression, settings, data)
    theirs = mean_score(sk, regression, settings, data)
    assert ours >= theirs - margin, (name, ours, theirs)
    # And the score is a good one in itself, not a shared failure.
    floor = {"digits": 0.95, "wine": 0.95, "breast_cancer": 0.93, "diabetes": 0.25}[name]
    assert ours >= floor, (name, ours)
