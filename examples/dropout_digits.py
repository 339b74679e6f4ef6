"""Does dropout help? A wide network on a few hundred digits, with and without it.

Trains ``MLP([64, 512, 512, 10])`` (SGD, momentum 0.9, 32-row batches) on 300 and on 600
training images of scikit-learn's digits, with dropout 0, 0.3 and 0.5 after each hidden
layer, five seeds each, and prints the held-out accuracy and log-loss as a markdown table
(the README's). Needs scikit-learn for the data set. About a minute and a half on 2 cores.

    python examples/dropout_digits.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import mlpfast

SETTINGS = [(300, 300), (600, 200)]  # (training images, epochs)
RATES = (0.0, 0.3, 0.5)
SEEDS = range(5)


def main() -> None:
    X, y = load_digits(return_X_y=True)
    print("| training images | epochs | dropout | held-out accuracy | held-out log-loss |")
    print("|---|---|---|---|---|")
    for n, epochs in SETTINGS:
        Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=n, random_state=0, stratify=y)
        scaler = StandardScaler().fit(Xtr)
        Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
        for p in RATES:
            accuracy, loss = [], []
            for seed in SEEDS:
                model = mlpfast.MLP([64, 512, 512, 10], seed=seed, dropout=p)
                model.fit(Xtr, ytr, epochs=epochs, batch_size=32, optimizer="sgd", lr=0.01,
                          momentum=0.9, seed=seed)  # fmt: skip
                accuracy.append(model.score(Xte, yte))
                # The layer chain in evaluation mode: no unit dropped, as predictions.
                loss.append(model.eval().loss(Xte, yte)[0])
            print(
                f"| {n} | {epochs} | {p:g} | {np.mean(accuracy):.4f} ± {np.std(accuracy):.4f} "
                f"| {np.mean(loss):.3f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
