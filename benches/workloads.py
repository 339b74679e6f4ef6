"""The benchmark workloads of mlpfast and the contenders that train them.

Each workload (layer sizes, activation, loss, batch, samples, epochs, dtype) is trained with
plain SGD (lr 0.01, shuffle on, every sample used each epoch) by:

* ``train_mlpfast``: one ``MLP.fit`` call;
* ``train_numpy``: the vectorized numpy training a person writes (the lecture's two-layer net
  generalized to L layers): a permutation per epoch, ``X[idx]`` gathers, ``a @ W + b``, the
  activation, the loss gradient, ``.T @`` backward and in-place updates; every elementwise
  activation of mlpfast (``NUMPY_ACTIVATIONS``), and maxout in ``train_numpy_maxout``;
* the JAX contenders of ``jax_train.py``, when JAX is importable;
* ``train_sklearn`` and ``train_torch`` when scikit-learn / PyTorch are importable.

Each workload carries two targets of ../shared/BENCHMARKS.md: numpy's time over mlpfast's
(``target``) and the faster JAX contender's time over mlpfast's (``jax_target``).

``flops_per_epoch`` counts 6·B·in·out per layer and step, less 2·B·in·out for the first layer
(its input gradient is never needed); a maxout layer of k pieces does k times its products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

import mlpfast

# mlpfast's maxout hidden layers have two pieces (``Maxout.pieces``).
MAXOUT_PIECES = 2


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
    target: float  # numpy's time / mlpfast's at least this (BENCHMARKS.md's targets)
    jax_target: float  # the faster JAX contender's time / mlpfast's at least this

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
        return self.flops_per_step(self.samples)  # every row passes once per epoch

    def flops_per_step(self, rows: int | None = None) -> float:
        """FLOPs of the GEMMs of one step on ``rows`` rows (default: one full batch)."""
        rows = self.batch if rows is None else rows
        total = 0.0
        last = len(self.sizes) - 2
        for i, (n_in, n_out) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            pieces = MAXOUT_PIECES if self.activation == "maxout" and i < last else 1
            total += (4 if i == 0 else 6) * rows * n_in * n_out * pieces
        return total


WORKLOADS = [
    Workload("tiny", (64, 128, 10), "relu", "softmax", 32, 65_536, 1, "float32", 6.0, 3.0),
    Workload("deep", (32, *(64,) * 6, 2), "relu", "softmax", 64, 32_768, 1, "float32", 5.0, 2.0),
    Workload("seed", (1000, 100, 10), "sigmoid", "mse", 64, 64, 500, "float64", 2.0, 2.0),
    Workload("mnist32", (784, 256, 128, 10), "relu", "softmax", 32, 16_384, 1, "float32", 2.5, 1.5),
    Workload("mnist", (784, 256, 128, 10), "relu", "softmax", 128, 60_000, 1, "float32", 2.0, 1.3),
    Workload(
        "mnist64f", (784, 256, 128, 10), "relu", "softmax", 128, 30_000, 1, "float64", 2.0, 1.5
    ),
    Workload(
        "wide", (1024, 2048, 2048, 10), "relu", "softmax", 256, 8_192, 1, "float32", 1.5, 1.15
    ),
]
BY_NAME = {w.name: w for w in WORKLOADS}


def init_params(w: Workload, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The same starting weights for every contender: those of ``mlpfast.MLP(seed=seed)``."""
    model = mlpfast.MLP(
        list(w.sizes), activation=w.activation, loss=w.loss, dtype=w.dtype, seed=seed
    )
    return [(layer.weight.copy(), layer.bias.copy()) for layer in model.param_layers]


def mlpfast_model(w: Workload, params, seed: int = 0) -> mlpfast.MLP:
    """An ``MLP`` of the workload holding ``params`` (built outside the timed region)."""
    model = mlpfast.MLP(
        list(w.sizes), activation=w.activation, loss=w.loss, dtype=w.dtype, seed=seed
    )
    for layer, (W, b) in zip(model.param_layers, params):
        layer.weight = W
        layer.bias = b
    return model


def train_mlpfast(w: Workload, model: mlpfast.MLP, X, y, lr: float = 0.01, seed: int = 0):
    """One fit() call: the whole training run."""
    model.fit(X, y, epochs=w.epochs, batch_size=w.batch, lr=lr, shuffle=True, seed=seed)


# Each hidden activation as a person writes it in numpy: the function of z, and its derivative
# written from the activation's output a (what the forward pass kept); None when it is 1.
# leaky_relu's slope is 0.01 and elu's alpha 1, as in mlpfast. The derivatives keep a's dtype,
# so that float32 training stays in float32.
NUMPY_ACTIVATIONS = {
    "identity": (lambda z: z, None),
    "relu": (lambda z: np.maximum(z, 0), lambda a: a > 0),
    "sigmoid": (lambda z: 1.0 / (1.0 + np.exp(-z)), lambda a: a * (1 - a)),
    "tanh": (np.tanh, lambda a: 1 - a * a),
    "leaky_relu": (
        lambda z: np.where(z > 0, z, 0.01 * z),
        lambda a: np.where(a > 0, a.dtype.type(1), a.dtype.type(0.01)),
    ),
    # expm1 of min(z, 0): the branch np.where drops must not overflow either.
    "elu": (
        lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
        lambda a: np.where(a > 0, 1, a + 1),
    ),
}


def loss_gradient(w: Workload, scores, yb):
    """d loss / d scores: softmax cross-entropy averaged over the batch, or MSE averaged over
    every element (``2 / scores.size``)."""
    if w.loss == "mse":
        return (2.0 / scores.size) * (scores - yb)
    shifted = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(scores.shape[0]), yb] -= 1
    return p / scores.shape[0]


def train_numpy(w: Workload, X, y, params, lr: float = 0.01, seed: int = 0):
    """Idiomatic numpy minibatch SGD of the same network; returns the trained weights."""
    if w.activation == "maxout":
        return train_numpy_maxout(w, X, y, params, lr, seed)
    Ws = [W.copy() for W, _ in params]
    bs = [b.copy() for _, b in params]
    act, derivative = NUMPY_ACTIVATIONS[w.activation]
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    L = len(Ws)
    for _ in range(w.epochs):
        perm = rng.permutation(n)
        for start in range(0, n, w.batch):
            idx = perm[start : start + w.batch]
            xb, yb = X[idx], y[idx]
            acts = [xb]
            a = xb
            for i in range(L - 1):
                a = act(a @ Ws[i] + bs[i])
                acts.append(a)
            d = loss_gradient(w, a @ Ws[-1] + bs[-1], yb)
            for i in range(L - 1, -1, -1):
                dW = acts[i].T @ d
                db = d.sum(axis=0)
                if i > 0:
                    d = d @ Ws[i].T
                    if derivative is not None:
                        d *= derivative(acts[i])
                Ws[i] -= lr * dW
                bs[i] -= lr * db
    return Ws, bs


def train_numpy_maxout(w: Workload, X, y, params, lr: float = 0.01, seed: int = 0):
    """The same loop with maxout hidden layers: weights (k, in, out), each unit the max of its
    k pieces, the gradient routed to the piece that won."""
    Ws = [W.copy() for W, _ in params]
    bs = [b.copy() for _, b in params]
    rng = np.random.default_rng(seed)
    n = X.shape[0]
    L = len(Ws)
    for _ in range(w.epochs):
        perm = rng.permutation(n)
        for start in range(0, n, w.batch):
            idx = perm[start : start + w.batch]
            xb, yb = X[idx], y[idx]
            acts, wins = [xb], []
            a = xb
            for i in range(L - 1):
                z = a @ Ws[i] + bs[i][:, None, :]  # (k, B, out): every piece
                a = z.max(axis=0)
                wins.append(z == a)
                acts.append(a)
            d = loss_gradient(w, a @ Ws[-1] + bs[-1], yb)
            dW = acts[-1].T @ d
            db = d.sum(axis=0)
            d = d @ Ws[-1].T
            Ws[-1] -= lr * dW
            bs[-1] -= lr * db
            for i in range(L - 2, -1, -1):
                dz = wins[i] * d  # (k, B, out)
                dW = acts[i].T @ dz
                db = dz.sum(axis=1)
                if i > 0:
                    d = (dz @ Ws[i].transpose(0, 2, 1)).sum(axis=0)
                Ws[i] -= lr * dW
                bs[i] -= lr * db
    return Ws, bs


# scikit-learn's names of the activations it has.
SKLEARN_ACTIVATIONS = {"sigmoid": "logistic"}


def sklearn_model(w: Workload, lr: float = 0.01, seed: int = 0):
    """scikit-learn's MLP for the workload (plain SGD, no momentum, no L2, no early stop)."""
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPRegressor if w.loss == "mse" else MLPClassifier
    return cls(
        hidden_layer_sizes=w.sizes[1:-1],
        activation=SKLEARN_ACTIVATIONS.get(w.activation, w.activation),
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
