"""Does batch normalization help? Deep networks on digits, with and without it.

Trains deep MLPs (hidden layers of 128 units; SGD, momentum 0.9, 32-row batches) on 1,000
training images of scikit-learn's digits, with and without ``batch_norm=True``, five seeds
each, and prints the held-out accuracy after 1, 3, 10 and 30 epochs as a markdown table (the
README's). A fit that diverges counts as chance accuracy (0.1) from then on, and the table
says how many did. Needs scikit-learn for the data set. About ten seconds on 2 cores.

    python examples/batchnorm_digits.py
"""

from __future__ import annotations

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

import mlpfast

# (activation, hidden layers, learning rate)
SETTINGS = [("sigmoid", 4, 0.01), ("relu", 8, 0.01), ("relu", 8, 0.05)]
EPOCHS = (1, 3, 10, 30)
SEEDS = range(5)
CHANCE = 0.1


def curve(X, y, Xte, yte, activation, depth, lr, batch_norm, seed) -> tuple[list[float], bool]:
    """Held-out accuracy after each of EPOCHS, and whether the fit diverged."""
    sizes = [64] + [128] * depth + [10]
    model = mlpfast.MLP(sizes, activation=activation, seed=seed, batch_norm=batch_norm)
    scores, done = [], 0
    for epochs in EPOCHS:
        try:
            model.fit(X, y, epochs=epochs - done, batch_size=32, optimizer="sgd", lr=lr,
                      momentum=0.9, seed=seed, resume=done > 0)  # fmt: skip
        except FloatingPointError:
            return scores + [CHANCE] * (len(EPOCHS) - len(scores)), True
        done = epochs
        scores.append(model.score(Xte, yte))
    return scores, False


def main() -> None:
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X, y, train_size=1000, random_state=0, stratify=y)
    scaler = StandardScaler().fit(Xtr)
    Xtr, Xte = scaler.transform(Xtr), scaler.transform(Xte)
    head = " | ".join(f"{e} epoch{'s' if e > 1 else ''}" for e in EPOCHS)
    print(f"| network | lr | batch_norm | {head} | diverged |")
    print("|---|---|---|" + "---|" * len(EPOCHS) + "---|")
    for activation, depth, lr in SETTINGS:
        for batch_norm in (False, True):
            runs = [
                curve(Xtr, ytr, Xte, yte, activation, depth, lr, batch_norm, seed) for seed in SEEDS
            ]
            acc = np.array([r[0] for r in runs])
            cells = " | ".join(
                f"{m:.3f} ± {s:.3f}" for m, s in zip(acc.mean(axis=0), acc.std(axis=0))
            )
            diverged = sum(r[1] for r in runs)
            print(
                f"| {depth} × {activation} | {lr:g} | {batch_norm} | {cells} "
                f"| {diverged}/{len(runs)} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
