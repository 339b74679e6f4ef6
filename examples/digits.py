"""Train an MLP on the handwritten digits that ship with scikit-learn, with mlpfast.

Run: ``python examples/digits.py``. It prints one progress line per epoch and the final test
accuracy. scikit-learn is used only for the data set and the train/test split.
"""

import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import mlpfast


def main() -> int:
    digits = load_digits()
    X = digits.data.astype(np.float32) / 16.0  # pixel intensities 0..16 -> 0..1
    y = digits.target
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, stratify=y, random_state=0
    )
    # The progress lines report a validation split carved from the training images; the
    # test images are scored once, at the end.
    X_train, X_val, y_train, y_val = train_test_split(
        X_train, y_train, test_size=0.15, stratify=y_train, random_state=0
    )
    print(
        f"digits: {len(X_train)} training, {len(X_val)} validation and {len(X_test)} test "
        "images of 8x8 pixels"
    )

    model = mlpfast.MLP([64, 128, 64, 10], activation="relu", loss="softmax", seed=0)
    print(model)
    model.fit(
        X_train,
        y_train,
        epochs=40,
        batch_size=32,
        optimizer="adam",
        lr=1e-3,
        seed=0,
        validation_data=(X_val, y_val),
        verbose=True,
    )
    accuracy = model.score(X_test, y_test)
    print(f"test accuracy: {accuracy:.4f}")
    return 0 if accuracy >= 0.96 else 1


if __name__ == "__main__":
    sys.exit(main())
