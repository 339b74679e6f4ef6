"""The benchmark workloads of mlpfast and the contenders that train them.

Each workload (layer sizes, activation, loss, batch, samples, epochs, dtype) is trained with
plain SGD (lr 0.01, shuffle on, every sample used each epoch) by:

* ``train_mlpfast``: one ``MLP.fit`` call;
* ``train_numpy``: the vectorized numpy training a person writes (the lecture's two-layer net
  generalized to L layers): a permutation per epoch, ``X[idx]`` gathers, ``a @ W + b``, the
  activation, the loss gradient, ``.T @`` backward and in-place updates;
* ``train_sklearn`` and ``train_torch`` when scikit-learn / PyTorch are importable.

``flops_per_epoch`` counts 6·B·in·out per layer and step, less 2·B·in·out for the first layer
(its input gradient is never needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import mlpfast


@dataclass(frozen=True)
class Workload:
    """One row of the benchmark table."""

    name: str
    sizes: tuple[int, ...]
    activation: str
    loss: str
    batch: int
    samples: int
    epochs: int
    dtype: str
    target: float

    def data(self, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Standard normal features; integer labels (softmax) or normal targets (mse)."""
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((self.samples, self.sizes[0]), dtype=np.float64).astype(self.dtype)
        if self.loss == "mse":
            y = rng.standard_normal((self.samples, self.sizes[-1])).astype(self.dtype)
        else:
            y = rng.integers(0, self.sizes[-1], self.samples)
        return X, y

    def flops_per_epoch(self) -> float:
        """Multiply-add FLOPs of one epoch of forward, backward and update GEMMs."""
        steps_rows = self.samples  # every row passes once per epoch
        total = 0.0
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            total += (4 if i == 0 else 6) * steps_rows * n_in * n_out
        return total


WORKLOADS = [
    Workload("tiny", (64, 128, 10), "relu", "softmax", 32, 65_536, 1, "float32", 6.0),
    Workload(
        "deep", (32, 64, 64, 64, 64, 64, 64, 2), "relu", "softmax", 64, 32_768, 1, "float32", 5.0
    ),
    Workload("seed", (1000, 100, 10), "sigmoid", "mse", 64, 64, 500, "float64", 1.5),
    Workload("mnist32", (784, 256, 128, 10), "relu", "softmax", 32, 16_384, 1, "float32", 2.0),
    Workload("mnist", (784, 256, 128, 10), "relu", "softmax", 128, 60_000, 1, "float32", 1.3),
    Workload("mnist64f", (784, 256, 128, 10), "relu", "softmax", 128, 30_000, 1, "float64", 1.3),
    Workload("wide", (1024, 2048, 2048, 10), "relu", "softmax", 256, 8_192, 1, "float32", 1.1),
]
BY_NAME = {w.name: w for w in WORKLOADS}


def init_params(w: Workload, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same starting weights for every contender: those of ``mlpfast.MLP(seed=seed)``."""
    model = mlpfast.MLP(
        list(w.sizes), activation=w.activation, loss=w.loss, dtype=w.dtype, seed=seed
    )
    return [
        (layer.weight.copy(), layer.bias.copy())
        for layer in model.layers
        if isinstance(layer, mlpfast.Linear)
    ]


def train_mlpfast(w: Workload, X, y, params, lr: float = 0.01, seed: int = 0) -> mlpfast.MLP:
    """One fit() call from the given starting weights."""
    model = mlpfast.MLP(
        list(w.sizes), activation=w.activation, loss=w.loss, dtype=w.dtype, seed=seed
    )
    for layer, (W, b) in zip(
        [lr_ for lr_ in model.layers if isinstance(lr_, mlpfast.Linear)], params
    ):
        layer.weight = W
        layer.bias = b
    model.fit(X, y, epochs=w.epochs, batch_size=w.batch, lr=lr, shuffle=True, seed=seed)
    return model


def train_numpy(w: Workload, X, y, params, lr: float = 0.01, seed: int = 0):
    """Idiomatic numpy minibatch SGD of the same network; returns the trained weights."""
    Ws = [W.copy() for W, _ in params]
    bs = [b.copy() for _, b in params]
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    L = len(Ws)
    sigmoid = w.activation == "sigmoid"
    for _ in range(w.epochs):
        perm = rng.permutation(n)
        for start in range(0, n, w.batch):
            idx = perm[start : start + w.batch]
            xb, yb = X[idx], y[idx]
            B = xb.shape[0]
            acts = [xb]
            a = xb
            for i in range(L - 1):
                z = a @ Ws[i] + bs[i]
                a = 1.0 / (1.0 + np.exp(-z)) if sigmoid else np.maximum(z, 0)
                acts.append(a)
            scores = a @ Ws[-1] + bs[-1]
            if w.loss == "mse":
                d = (2.0 / scores.size) * (scores - yb)
            else:
                shifted = scores - scores.max(axis=1, keepdims=True)
                p = np.exp(shifted)
                p /= p.sum(axis=1, keepdims=True)
                p[np.arange(B), yb] -= 1
                d = p / B
            for i in range(L - 1, -1, -1):
                dW = acts[i].T @ d
                db = d.sum(axis=0)
                if i > 0:
                    d = d @ Ws[i].T
                    d *= acts[i] * (1 - acts[i]) if sigmoid else (acts[i] > 0)
                Ws[i] -= lr * dW
                bs[i] -= lr * db
    return Ws, bs
