"""Held-out score and fit time of mlpfast.sklearn against scikit-learn, in one process.

Run: ``python examples/compare_sklearn.py``. The data sets ship with scikit-learn; the
settings are those of ``tests/test_sklearn_parity.py`` (scaled features, a stratified 75/25
split, three random states each). Prints a Markdown table.
"""

import time
import warnings

import numpy as np
from sklearn import neural_network as sk
from sklearn.datasets import load_breast_cancer, load_diabetes, load_digits, load_wine
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import mlpfast
import mlpfast.sklearn as mf

CASES = {
    "digits": (load_digits, {"hidden_layer_sizes": (100,), "max_iter": 200}),
    "wine": (load_wine, {"hidden_layer_sizes": (100,), "max_iter": 300}),
    "breast_cancer": (load_breast_cancer, {"hidden_layer_sizes": (100,), "max_iter": 300}),
    "diabetes": (
        load_diabetes,
        {"hidden_layer_sizes": (16,), "max_iter": 300, "learning_rate_init": 0.003, "alpha": 3.0},
    ),
}
SEEDS = (0, 1, 2)


def run(module, regression, settings, data):
    Xtr, Xte, ytr, yte = data
    cls = module.MLPRegressor if regression else module.MLPClassifier
    scores, times, epochs = [], [], []
    for seed in SEEDS:
        est = cls(random_state=seed, **settings)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est.fit(Xtr, ytr)
        times.append(time.perf_counter() - start)
        scores.append(est.score(Xte, yte))
        epochs.append(est.n_iter_)
    return np.mean(scores), np.mean(times), np.mean(epochs)


def main() -> None:
    print(f"mlpfast threads: {mlpfast.get_num_threads()}")
    print("| data set | metric | scikit-learn | mlpfast | sklearn fit | mlpfast fit | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for name, (loader, settings) in CASES.items():
        regression = name == "diabetes"
        X, y = loader(return_X_y=True)
        Xtr, Xte, ytr, yte = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=None if regression else y
        )
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        if regression:
            mean, std = ytr.mean(), ytr.std()
            ytr, yte = (ytr - mean) / std, (yte - mean) / std
        data = (Xtr, Xte, ytr, yte)
        s_score, s_time, s_ep = run(sk, regression, settings, data)
        m_score, m_time, m_ep = run(mf, regression, settings, data)
        metric = "R²" if regression else "accuracy"
        print(
            f"| {name} | {metric} | {s_score:.4f} | {m_score:.4f} | "
            f"{1000 * s_time:.0f} ms ({s_ep:.0f} ep.) | {1000 * m_time:.0f} ms ({m_ep:.0f} ep.) | "
            f"{s_time / m_time:.1f}x |"
        )


if __name__ == "__main__":
    main()
