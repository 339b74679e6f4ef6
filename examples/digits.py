"""Train an MLP on the handwritten digits that ship with scikit-learn, with mlpfast.

Run: ``python examples/digits.py``. It trains through ``mlpfast.sklearn.MLPClassifier``
(scikit-learn's MLPClassifier, one import changed), printing one progress line per epoch;
saves the model to a safetensors file and loads it back; writes the loss and validation
curves to ``docs/loss_curve.png``; and prints the final test accuracy.
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import mlpfast
from mlpfast.sklearn import MLPClassifier  # was: from sklearn.neural_network import ...

PNG = Path(__file__).resolve().parent.parent / "docs" / "loss_curve.png"


def main() -> int:
    digits = load_digits()
    X = digits.data / 16.0  # pixel intensities 0..16 -> 0..1
    y = digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    print(f"digits: {len(X_train)} training and {len(X_test)} test images of 8x8 pixels")

    # The progress lines report the validation split that early stopping holds out of the
    # training images (15%); the test images are scored once, at the end.
    clf = MLPClassifier(
        hidden_layer_sizes=(128, 64),
        batch_size=32,
        learning_rate_init=1e-3,
        max_iter=60,
        early_stopping=True,
        validation_fraction=0.15,
        n_iter_no_change=10,
        random_state=0,
        verbose=True,
    )
    print(clf)
    start = time.perf_counter()
    clf.fit(X_train, y_train)
    print(
        f"trained {clf.n_iter_} epochs in {time.perf_counter() - start:.2f}s; best validation "
        f"accuracy {clf.best_validation_score_:.4f} (its weights kept)"
    )

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "digits.safetensors"
        clf.save(path)
        loaded = mlpfast.load(path)
        same = np.array_equal(loaded.predict(X_test), clf.predict(X_test))
        print(f"saved {path.stat().st_size:,} bytes, loaded back: same predictions: {same}")

    PNG.parent.mkdir(exist_ok=True)
    mlpfast.plot_history(clf, PNG, title="mlpfast.sklearn.MLPClassifier on digits")
    print(f"loss curve: {PNG}")

    accuracy = clf.score(X_test, y_test)
    print(f"test accuracy: {accuracy:.4f}")
    return 0 if accuracy >= 0.96 and same else 1


if __name__ == "__main__":
    sys.exit(main())
