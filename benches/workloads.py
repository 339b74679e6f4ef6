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


def mlpfast_model(w: Workload, params, seed: int = 0) -> mlpfast.MLP:
    """An ``MLP`` of the workload holding ``params`` (built outside the timed region)."""
    model = mlpfast.MLP(
        list(w.sizes), activation=w.activation, loss=w.loss, dtype=w.dtype, seed=seed
    )
    linears = [layer for layer in model.layers if isinstance(layer, mlpfast.Linear)]
    for layer, (W, b) in zip(linears, params):
        layer.weight = W
        layer.bias = b
    return model


def train_mlpfast(w: Workload, model: mlpfast.MLP, X, y, lr: float = 0.01, seed: int = 0):
    """One fit() call: the whole training run."""
    model.fit(X, y, epochs=w.epochs, batch_size=w.batch, lr=lr, shuffle=True, seed=seed)


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


def sklearn_model(w: Workload, lr: float = 0.01, seed: int = 0):
    """scikit-learn's MLP for the workload (plain SGD, no momentum, no L2, no early stop)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if w.loss == "mse" else MLPClassifier
    return cls(
        hidden_layer_sizes=w.sizes[1:-1],
        activation="logistic" if w.activation == "sigmoid" else w.activation,
        solver="sgd",
        momentum=0.0,
        nesterovs_momentum=False,
        alpha=0.0,
        learning_rate_init=lr,
        batch_size=w.batch,
        max_iter=w.epochs,
        shuffle=True,
        tol=0.0,
        n_iter_no_change=10**9,
        random_state=seed,
    )


def train_sklearn(w: Workload, model, X, y):
    """scikit-learn's fit (it copies X to float64 and runs its own numpy loop)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)


def torch_setup(w: Workload, params, X, y):
    """A PyTorch ``nn.Sequential`` holding ``params``, and the data as tensors."""
    import torch

    dtype = torch.float32 if w.dtype == "float32" else torch.float64
    layers = []
    for i, (W, b) in enumerate(params):
        lin = torch.nn.Linear(W.shape[0], W.shape[1], dtype=dtype)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers.append(lin)
        if i < len(params) - 1:
            layers.append(torch.nn.Sigmoid() if w.activation == "sigmoid" else torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    Xt = torch.from_numpy(X)
    yt = torch.from_numpy(y if w.loss == "mse" else y.astype(np.int64))
    return net, Xt, yt


def train_torch(w: Workload, net, Xt, yt, lr: float = 0.01, seed: int = 0):
    """The usual PyTorch loop: a permutation per epoch, index, forward, loss, backward, step."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(net.parameters(), lr=lr)
    loss_fn = torch.nn.MSELoss() if w.loss == "mse" else torch.nn.CrossEntropyLoss()
    n = Xt.shape[0]
    for _ in range(w.epochs):
        perm = torch.randperm(n, generator=gen)
        for start in range(0, n, w.batch):
            idx = perm[start : start + w.batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
