"""Plain-numpy reference implementation of everything mlpfast computes.

Independent of mlpfast on purpose: activations, losses, the MLP forward and
backward passes, and a mini-batch training loop (SGD, momentum, Nesterov, Adam,
AdamW and RMSprop with PyTorch semantics, L2 weight decay on weights only,
gradient-norm clipping, per-epoch lr decay, cosine annealing and linear warm-up,
rates set between epochs, consecutive batches). The tests compare mlpfast against
these functions.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout"]
LOSSES = ["softmax", "svm", "mse", "bce", "huber", "mae", "poisson", "half_poisson_deviance"]
RELU_FAMILY = {"relu", "leaky_relu", "elu"}
LEAKY_ALPHA = 0.01
ELU_ALPHA = 1.0


# --------------------------------------------------------------------------- activations
def act_forward(name: str, z: np.ndarray, alpha: float | None = None) -> np.ndarray:
    """Apply the activation ``name`` elementwise to ``z``."""
    if name == "identity":
        return z.copy()
    if name == "sigmoid":
        return 1.0 / (1.0 + np.exp(-z))
    if name == "tanh":
        return np.tanh(z)
    if name == "relu":
        return np.maximum(z, 0.0)
    if name == "leaky_relu":
        a = LEAKY_ALPHA if alpha is None else alpha
        return np.where(z > 0, z, a * z)
    if name == "elu":
        a = ELU_ALPHA if alpha is None else alpha
        return np.where(z > 0, z, a * np.expm1(np.minimum(z, 0.0)))
    raise ValueError(name)


def act_backward(
    name: str, z: np.ndarray, dy: np.ndarray, alpha: float | None = None
) -> np.ndarray:
    """Gradient through the activation ``name`` at pre-activation ``z`` (x <= 0 side at 0)."""
    if name == "identity":
        return dy.copy()
    if name == "sigmoid":
        s = 1.0 / (1.0 + np.exp(-z))
        return dy * s * (1.0 - s)
    if name == "tanh":
        return dy * (1.0 - np.tanh(z) ** 2)
    if name == "relu":
        return dy * (z > 0)
    if name == "leaky_relu":
        a = LEAKY_ALPHA if alpha is None else alpha
        return dy * np.where(z > 0, 1.0, a)
    if name == "elu":
        a = ELU_ALPHA if alpha is None else alpha
        return dy * np.where(z > 0, 1.0, a * np.exp(np.minimum(z, 0.0)))
    raise ValueError(name)


# --------------------------------------------------------------------------- losses
def softmax_loss(s: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient."""
    n = s.shape[0]
    sh = s - s.max(axis=1, keepdims=True)
    logp = sh - np.log(np.exp(sh).sum(axis=1, keepdims=True))
    loss = -logp[np.arange(n), y].mean()
    ds = np.exp(logp)
    ds[np.arange(n), y] -= 1.0
    return float(loss), ds / n


def svm_loss(s: np.ndarray, y: np.ndarray, margin: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean multiclass hinge loss and its gradient (strictly positive margins count)."""
    n = s.shape[0]
    correct = s[np.arange(n), y][:, None]
    m = s - correct + margin
    m[np.arange(n), y] = 0.0
    loss = np.maximum(m, 0.0).sum() / n
    ds = (m > 0).astype(np.float64)
    ds[np.arange(n), y] = -ds.sum(axis=1)
    return float(loss), ds / n


def svm_margins(s: np.ndarray, y: np.ndarray, margin: float = 1.0) -> np.ndarray:
    """The hinge arguments ``s_j - s_y + margin`` for every j != y (flattened)."""
    n = s.shape[0]
    m = s - s[np.arange(n), y][:, None] + margin
    mask = np.ones_like(m, dtype=bool)
    mask[np.arange(n), y] = False
    return m[mask]


def mse_loss(p: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over all elements of the squared error, and its gradient."""
    d = p - t
    return float(np.mean(d * d)), 2.0 * d / d.size


def bce_loss(z: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over rows of the summed sigmoid cross-entropy on logits, and its gradient."""
    t = np.asarray(t, dtype=np.float64).reshape(z.shape)
    n = z.shape[0]
    per = np.maximum(z, 0.0) - z * t + np.log1p(np.exp(-np.abs(z)))
    sig = 1.0 / (1.0 + np.exp(-z))
    return float(per.sum() / n), (sig - t) / n


def huber_loss(p: np.ndarray, t: np.ndarray, delta: float = 1.0) -> tuple[float, np.ndarray]:
    """Mean over all elements of the Huber loss (PyTorch's HuberLoss), and its gradient."""
    d = p - t
    a = np.abs(d)
    per = np.where(a <= delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    slope = np.where(a <= delta, d, delta * np.sign(d))
    return float(per.mean()), slope / d.size


def mae_loss(p: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean absolute error (PyTorch's L1Loss), and its gradient (0 where p = t)."""
    d = p - t
    return float(np.abs(d).mean()), np.sign(d) / d.size


def poisson_loss(f: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over all elements of e^f - t*f (f the log mean), and its gradient."""
    return float(np.mean(np.exp(f) - t * f)), (np.exp(f) - t) / f.size


def half_poisson_loss(f: np.ndarray, t: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean over rows of half the Poisson deviance summed over outputs, with a log link
    (scikit-learn's MLPRegressor(loss="poisson")), and its gradient."""
    mu = np.exp(f)
    t_ln_t = np.where(t > 0, t * np.log(np.where(t > 0, t, 1.0)), 0.0)
    per = t_ln_t - t * f - t + mu
    return float(per.sum() / f.shape[0]), (mu - t) / f.shape[0]


def loss_kink_distance(name: str, scores: np.ndarray, y: np.ndarray) -> float:
    """How far the scores are from a point where the loss is not differentiable."""
    if name in ("huber", "mae"):
        d = np.abs(scores - np.asarray(y, dtype=np.float64).reshape(scores.shape))
        return float(np.min(np.abs(d - 1.0)) if name == "huber" else np.min(d))
    return np.inf


def loss_fn(name: str, scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Dispatch to the loss called ``name`` (as MLP(loss=...) spells it)."""
    if name == "softmax":
        return softmax_loss(scores, y)
    if name == "svm":
        return svm_loss(scores, y)
    if name == "mse":
        return mse_loss(scores, np.asarray(y, dtype=np.float64).reshape(scores.shape))
    if name == "bce":
        return bce_loss(scores, y)
    values = {
        "huber": huber_loss,
        "mae": mae_loss,
        "poisson": poisson_loss,
        "half_poisson_deviance": half_poisson_loss,
    }
    if name in values:
        return values[name](scores, np.asarray(y, dtype=np.float64).reshape(scores.shape))
    raise ValueError(name)


def weighted_loss_fn(name: str, scores: np.ndarray, y, w) -> tuple[float, np.ndarray]:
    """The weighted mean of the loss over rows, sum_i w_i L_i / sum_i w_i, and its gradient;
    ``w=None`` is ``loss_fn``. Each row goes through ``loss_fn`` alone, so a loss averaged over
    a row's outputs stays so."""
    if w is None:
        return loss_fn(name, scores, y)
    rows = [loss_fn(name, scores[i : i + 1], y[i : i + 1]) for i in range(len(scores))]
    total = float(np.sum(w))
    value = sum(float(wi) * v for wi, (v, _) in zip(w, rows)) / total
    grad = np.concatenate([float(wi) * g for wi, (_, g) in zip(w, rows)]) / total
    return value, grad


def weighted_metric(loss: str, scores: np.ndarray, y, w) -> float:
    """``metric`` with row weights, as scikit-learn's accuracy_score and r2_score weigh."""
    if w is None:
        return metric(loss, scores, y)
    w = np.asarray(w, dtype=np.float64)
    if loss in ("softmax", "svm"):
        return float(np.sum(w * (np.argmax(scores, axis=1) == y)) / w.sum())
    if loss == "bce":
        t = np.asarray(y).reshape(scores.shape)
        return float(np.sum(w * np.all((scores > 0) == (t == 1), axis=1)) / w.sum())
    pred = np.exp(scores) if loss in ("poisson", "half_poisson_deviance") else scores
    pred = pred.reshape(pred.shape[0], -1)
    truth = np.asarray(y, dtype=np.float64).reshape(pred.shape)
    mean = (w[:, None] * truth).sum(axis=0) / w.sum()
    ss_res = (w[:, None] * (truth - pred) ** 2).sum(axis=0)
    ss_tot = (w[:, None] * (truth - mean) ** 2).sum(axis=0)
    return float(np.mean(1.0 - ss_res / ss_tot))


# --------------------------------------------------------------------------- dropout
_U64 = (1 << 64) - 1
_STEP = 0x9E3779B97F4A7C15


def _mix(z):
    """SplitMix64's finalizer on uint64 arrays (wrapping arithmetic)."""
    z = np.asarray(z, dtype=np.uint64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(p: float, seed: int, step: int, block: int, rows: int, cols: int) -> np.ndarray:
    """The 0/1 mask mlpfast's fit draws after hidden block ``block`` at step ``step`` of a
    fit seeded ``seed``: unit (row, col) is kept when the hash of (seed, step, row, col) is at
    or above p·2⁶⁴ (see rust/mlpfast-core/src/dropout.rs), written here from that description;
    each block's seed is the fit's, moved by the block's index."""
    return layer_dropout_mask(p, seed + (block + 1) * 0xD1B54A32D192ED03, step, rows, cols)


def layer_dropout_mask(p: float, seed: int, step: int, rows: int, cols: int) -> np.ndarray:
    """The 0/1 mask a ``Dropout(p, seed=seed)`` layer applies at its step ``step``."""
    seed &= _U64
    with np.errstate(over="ignore"):  # uint64 arithmetic wraps, as the Rust code's does
        key = _mix(_mix((seed + _STEP) & _U64) + np.uint64((step * _STEP) & _U64))
        r = np.arange(rows, dtype=np.uint64)[:, None]
        c = np.arange(cols, dtype=np.uint64)[None, :]
        row_key = _mix(key ^ (r * np.uint64(_STEP) + np.uint64(_STEP)))
        h = _mix(row_key + c * np.uint64(_STEP))
    return (h >= np.uint64(int(p * 2.0**64))).astype(np.float64)


# --------------------------------------------------------------------------- network
def same_bits(a, b) -> bool:
    """Whether two models hold the same parameters, bit for bit."""
    return all(
        np.array_equal(x, y) and np.array_equal(p, q)
        for (x, p), (y, q) in zip(params_of(a), params_of(b))
    )


def params_of(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copy (weight, bias) of every parameter layer of an mlpfast model, as float64."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "weight"):
            out.append(
                (np.array(layer.weight, dtype=np.float64), np.array(layer.bias, dtype=np.float64))
            )
    return out


def forward(params, activation: str, X: np.ndarray, masks=None):
    """Scores of the MLP and the cache needed by :func:`backward`.

    Hidden blocks are ``act(a @ W + b)`` or, for maxout, ``max_p(a @ W[p] + b[p])``;
    the last block is linear. ``masks`` (one per hidden block: dropout's 0/1 mask divided by
    1 - p) multiply the hidden outputs.
    """
    a = np.asarray(X, dtype=np.float64)
    cache = []
    for i, (W, b) in enumerate(params):
        if masks is not None and i > 0:
            a = a * masks[i - 1]
        last = i == len(params) - 1
        if activation == "maxout" and not last:
            z = np.einsum("nd,pdo->pno", a, W) + b[:, None, :]
            idx = np.argmax(z, axis=0)  # first piece wins ties
            cache.append((a, z, idx))
            a = np.take_along_axis(z, idx[None], axis=0)[0]
        else:
            z = a @ W + b
            cache.append((a, z, None))
            a = z if last else act_forward(activation, z)
    return a, cache


def backward(params, activation: str, cache, dscores: np.ndarray, masks=None):
    """Gradients [(dW, db), ...] of every block and dX, given dL/dscores (and the dropout
    masks ``forward`` applied)."""
    grads = [None] * len(params)
    d = dscores
    for i in range(len(params) - 1, -1, -1):
        W, _ = params[i]
        a, z, idx = cache[i]
        last = i == len(params) - 1
        if masks is not None and not last:
            d = d * masks[i]
        if activation == "maxout" and not last:
            P = W.shape[0]
            dW = np.zeros_like(W)
            db = np.zeros((P, W.shape[2]))
            da = np.zeros_like(a)
            for p in range(P):
                dp = d * (idx == p)
                dW[p] = a.T @ dp
                db[p] = dp.sum(axis=0)
                da += dp @ W[p].T
            grads[i] = (dW, db)
            d = da
        else:
            if not last:
                d = act_backward(activation, z, d)
            grads[i] = (a.T @ d, d.sum(axis=0))
            d = d @ W.T
    return grads, d


def data_loss_and_grads(params, activation: str, loss: str, X, y, w=None, masks=None):
    """Mean data loss (weighted by ``w``, when given) and its gradients for one batch."""
    scores, cache = forward(params, activation, X, masks)
    value, ds = weighted_loss_fn(loss, scores, y, w)
    grads, _ = backward(params, activation, cache, ds, masks)
    return value, grads


def kink_distance(params, activation: str, X, masks=None) -> float:
    """Smallest distance of any hidden unit to a kink (0 for relu family, ties for maxout)."""
    _, cache = forward(params, activation, X, masks)
    best = np.inf
    for _a, z, _idx in cache[:-1]:
        if activation == "maxout":
            zs = np.sort(z, axis=0)
            best = min(best, float(np.min(zs[-1] - zs[-2])))
        elif activation in RELU_FAMILY:
            best = min(best, float(np.min(np.abs(z))))
    return best


def r2(pred: np.ndarray, truth: np.ndarray) -> float:
    """R^2 averaged over output columns (scikit-learn's uniform average)."""
    pred = pred.reshape(pred.shape[0], -1)
    truth = truth.reshape(pred.shape)
    ss_res = ((truth - pred) ** 2).sum(axis=0)
    ss_tot = ((truth - truth.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - ss_res / ss_tot))


def metric(loss: str, scores: np.ndarray, y) -> float:
    """Accuracy (classification) or R^2 (regression: of the predicted means e^f for poisson)
    of scores against targets."""
    if loss in ("softmax", "svm"):
        return float(np.mean(np.argmax(scores, axis=1) == y))
    if loss == "bce":
        t = np.asarray(y).reshape(scores.shape)
        return float(np.mean(np.all((scores > 0) == (t == 1), axis=1)))
    pred = np.exp(scores) if loss in ("poisson", "half_poisson_deviance") else scores
    return r2(pred, np.asarray(y, dtype=np.float64))


def metric_name(loss: str) -> str:
    """The history key of the validation metric."""
    return "val_accuracy" if loss in ("softmax", "svm", "bce") else "val_r2"


# --------------------------------------------------------------------------- batch norm
BN_MOMENTUM = 0.1
BN_EPS = 1e-5


def running_of(model) -> list[tuple[np.ndarray, np.ndarray]]:
    """Copy (running_mean, running_var) of every BatchNorm layer of an mlpfast model, as
    float64."""
    return [
        (
            np.array(layer.running_mean, dtype=np.float64),
            np.array(layer.running_var, dtype=np.float64),
        )
        for layer in model.layers
        if hasattr(layer, "running_mean")
    ]


def bn_hidden_count(params) -> int:
    """The number of hidden layers of a batch-norm network's params
    [(W0, b0), (gamma0, beta0), ..., (WL, bL)]."""
    if len(params) % 2 != 1:
        raise ValueError(
            f"{len(params)} parameter pairs: expected (W, b), (gamma, beta) per hidden"
        )
    return (len(params) - 1) // 2


def bn_forward(params, activation: str, X: np.ndarray, masks=None, running=None):
    """Scores of an ``MLP(batch_norm=True)``, the cache :func:`bn_backward` needs, and the
    batch statistics [(μ, σ²), ...] of every BatchNorm.

    ``params`` are listed as :func:`params_of` lists such a model's:
    [(W0, b0), (gamma0, beta0), (W1, b1), (gamma1, beta1), ..., (WL, bL)]. Hidden layer i is
    ``act(BN(a @ W + b))`` or, for maxout, ``BN(max_p(a @ W[p] + b[p]))``; ``masks[i]`` (dropout's
    0/1 mask divided by 1 - p) multiplies its output. Training mode (``running=None``): each
    BatchNorm normalizes by its batch's mean μ and biased variance σ²,
    ``gamma·(x - μ)/√(σ² + ε) + beta``; evaluation mode: by ``running`` [(mean, var), ...].
    """
    a = np.asarray(X, dtype=np.float64)
    cache = []
    stats = []
    for i in range(bn_hidden_count(params)):
        W, b = params[2 * i]
        gamma, beta = params[2 * i + 1]
        if activation == "maxout":
            z = np.einsum("nd,pdo->pno", a, W) + b[:, None, :]
            idx = np.argmax(z, axis=0)  # first piece wins ties
            h = np.take_along_axis(z, idx[None], axis=0)[0]
        else:
            z, idx = None, None
            h = a @ W + b
        if running is None:
            mu = h.mean(axis=0)
            var = ((h - mu) ** 2).mean(axis=0)
        else:
            mu, var = running[i]
        inv = 1.0 / np.sqrt(var + BN_EPS)
        xhat = (h - mu) * inv
        u = gamma * xhat + beta
        out = u if activation == "maxout" else act_forward(activation, u)
        if masks is not None:
            out = out * masks[i]
        cache.append((a, z, idx, xhat, inv, u))
        stats.append((mu, var))
        a = out
    W, b = params[-1]
    cache.append((a, None, None, None, None, None))
    return a @ W + b, cache, stats


def bn_backward(params, activation: str, cache, dscores: np.ndarray, masks=None, training=True):
    """Gradients [(dW, db), (dgamma, dbeta), ...] (aligned with ``params``) and dX of a batch-norm
    network, given dL/dscores and the cache of :func:`bn_forward` (in the same mode).

    BatchNorm's backward in training mode: dbeta = Σg, dgamma = Σ g·x̂,
    dx = gamma/√(σ² + ε)·(g - dbeta/n - x̂·dgamma/n); in evaluation mode
    dx = gamma/√(var + ε)·g. The bias gradient of a Linear layer before a BatchNorm comes out
    as the column sums of that dx, which are 0 up to rounding (the fit uses the exact 0: see
    :func:`fit_batchnorm`).
    """
    grads = [None] * len(params)
    W, _ = params[-1]
    a = cache[-1][0]
    d = dscores
    grads[-1] = (a.T @ d, d.sum(axis=0))
    d = d @ W.T
    for i in range(bn_hidden_count(params) - 1, -1, -1):
        a, _z, idx, xhat, inv, u = cache[i]
        W, _ = params[2 * i]
        gamma, _ = params[2 * i + 1]
        if masks is not None:
            d = d * masks[i]
        if activation != "maxout":
            d = act_backward(activation, u, d)
        n = d.shape[0]
        dbeta = d.sum(axis=0)
        dgamma = (d * xhat).sum(axis=0)
        grads[2 * i + 1] = (dgamma, dbeta)
        if training:
            d = gamma * inv * (d - dbeta / n - xhat * dgamma / n)
        else:
            d = gamma * inv * d
        if activation == "maxout":
            P = W.shape[0]
            dW = np.zeros_like(W)
            db = np.zeros((P, W.shape[2]))
            da = np.zeros_like(a)
            for p in range(P):
                dp = d * (idx == p)
                dW[p] = a.T @ dp
                db[p] = dp.sum(axis=0)
                da += dp @ W[p].T
            grads[2 * i] = (dW, db)
            d = da
        else:
            grads[2 * i] = (a.T @ d, d.sum(axis=0))
            d = d @ W.T
    return grads, d


def bn_data_loss_and_grads(params, activation: str, loss: str, X, y, w=None, masks=None):
    """Mean data loss (weighted by ``w``, when given), its gradients and the batch
    statistics for one training-mode batch of a batch-norm network."""
    scores, cache, stats = bn_forward(params, activation, X, masks)
    value, ds = weighted_loss_fn(loss, scores, y, w)
    grads, _ = bn_backward(params, activation, cache, ds, masks)
    return value, grads, stats


def bn_kink_distance(params, activation: str, X, masks=None) -> float:
    """Smallest distance of any hidden unit of a batch-norm network (training mode) to a
    kink: of BatchNorm's output to 0 for the relu family, of the best two maxout pieces."""
    _, cache, _ = bn_forward(params, activation, X, masks)
    best = np.inf
    for _a, z, _idx, _xhat, _inv, u in cache[:-1]:
        if activation == "maxout":
            zs = np.sort(z, axis=0)
            best = min(best, float(np.min(zs[-1] - zs[-2])))
        elif activation in RELU_FAMILY:
            best = min(best, float(np.min(np.abs(u))))
    return best


def bn_update_running(running, stats, n: int, momentum: float = BN_MOMENTUM):
    """The running statistics after a training step on a batch of ``n`` rows with batch
    statistics ``stats`` (PyTorch's: the variance's estimate is the unbiased one)."""
    return [
        ((1 - momentum) * rm + momentum * mu, (1 - momentum) * rv + momentum * var * n / (n - 1))
        for (rm, rv), (mu, var) in zip(running, stats)
    ]


def bn_initial(params) -> list[tuple[np.ndarray, np.ndarray]]:
    """The running statistics of a new batch-norm network: mean 0, variance 1."""
    return [(np.zeros_like(g), np.ones_like(g)) for g, _ in params[1:-1:2]]


# --------------------------------------------------------------------------- shuffling
def _splitmix64(state: int) -> tuple[int, int]:
    state = (state + _STEP) & _U64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _U64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _U64
    return state, z ^ (z >> 31)


def _rotl(x: int, k: int) -> int:
    return ((x << k) | (x >> (64 - k))) & _U64


class Xoshiro256pp:
    """The generator mlpfast shuffles with (rust/mlpfast-core/src/rng.rs): Xoshiro256++
    seeded through SplitMix64, Lemire's multiply-shift for a bounded integer."""

    def __init__(self, seed: int):
        sm = seed & _U64
        self.s = []
        for _ in range(4):
            sm, v = _splitmix64(sm)
            self.s.append(v)

    def next_u64(self) -> int:
        s = self.s
        result = (_rotl((s[0] + s[3]) & _U64, 23) + s[0]) & _U64
        t = (s[1] << 17) & _U64
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = _rotl(s[3], 45)
        return result

    def below(self, n: int) -> int:
        """Uniform in [0, n)."""
        return (self.next_u64() * n) >> 64

    def shuffle(self, v: list) -> None:
        """Fisher-Yates, in place."""
        for i in range(len(v) - 1, 0, -1):
            j = self.below(i + 1)
            v[i], v[j] = v[j], v[i]


def epoch_orders(seed: int, n: int, epochs: int) -> list[np.ndarray]:
    """The row order of every epoch of ``MLP.fit(shuffle=True, seed=seed)``: one generator
    for the fit, the order shuffled again (not afresh) at the start of every epoch."""
    rng = Xoshiro256pp(seed)
    order = list(range(n))
    out = []
    for _ in range(epochs):
        rng.shuffle(order)
        out.append(np.array(order))
    return out


def batch_bounds(n: int, batch_size: int, merge_single: bool = False) -> list[tuple[int, int]]:
    """The (lo, hi) row ranges of an epoch's batches; with ``merge_single`` (batch norm), a
    last batch of one row joins the batch before it."""
    b = min(batch_size, n)
    bounds = [(lo, min(lo + b, n)) for lo in range(0, n, b)]
    if merge_single and len(bounds) > 1 and bounds[-1][1] - bounds[-1][0] == 1:
        bounds = [*bounds[:-2], (bounds[-2][0], n)]
    return bounds


# --------------------------------------------------------------------------- training
def fit(
    params,
    activation: str,
    loss: str,
    X,
    y,
    *,
    epochs: int,
    batch_size: int,
    optimizer: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    lr_decay: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    alpha: float = 0.99,
    clip_grad_norm: float | None = None,
    schedule: str = "constant",
    lr_min: float = 0.0,
    warmup_epochs: int = 0,
    set_lr: dict[int, float] | None = None,
    validation_data=None,
    sample_weight=None,
    dropout: float = 0.0,
    seed: int = 0,
    shuffle: bool = False,
):
    """Train copies of ``params`` like ``MLP.fit(..., shuffle=False)``; return (params, history).

    With ``sample_weight``, every batch's loss is the weighted mean over its rows and a batch
    whose weights are all 0 is skipped; ``validation_data`` may be (X, y, weights).
    ``set_lr`` maps an epoch number (from 1) to the rate a callback sets after it.
    With ``dropout``, step s (from 0) of the fit masks the hidden outputs with
    :func:`dropout_mask` of (p, ``seed``, s); validation runs without dropout.
    With ``shuffle``, the batches follow :func:`epoch_orders` of ``seed`` (as
    ``MLP.fit(shuffle=True, seed=seed)``'s do).
    """
    params = [(W.copy(), b.copy()) for W, b in params]

    def step_grads(Xb, yb, wb, step):
        masks = None
        if dropout > 0:
            masks = [
                dropout_mask(dropout, seed, step, i, len(Xb), W.shape[-1]) / (1 - dropout)
                for i, (W, _) in enumerate(params[:-1])
            ]
        return data_loss_and_grads(params, activation, loss, Xb, yb, wb, masks)

    history = _train(
        params,
        [True, False] * len(params),  # weights get L2, biases do not
        step_grads,
        lambda Xv: forward(params, activation, Xv)[0],
        loss,
        X,
        y,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=optimizer,
        lr=lr,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
        lr_decay=lr_decay,
        betas=betas,
        eps=eps,
        alpha=alpha,
        clip_grad_norm=clip_grad_norm,
        schedule=schedule,
        lr_min=lr_min,
        warmup_epochs=warmup_epochs,
        set_lr=set_lr,
        validation_data=validation_data,
        sample_weight=sample_weight,
        order_seed=seed if shuffle else None,
    )
    return params, history


def fit_batchnorm(
    params,
    activation: str,
    loss: str,
    X,
    y,
    *,
    running=None,
    dropout: float = 0.0,
    seed: int = 0,
    shuffle: bool = False,
    **settings,
):
    """Train copies of an ``MLP(batch_norm=True)``'s ``params`` (as :func:`params_of` lists
    them: [(W0, b0), (gamma0, beta0), ..., (WL, bL)]) and running statistics (``running``, default
    :func:`bn_initial`) like its ``fit``; return (params, running, history).

    Every step normalizes by its batch's statistics (:func:`bn_forward`, training mode) and
    then moves the running statistics (:func:`bn_update_running`). The bias gradient of a
    Linear layer before a BatchNorm is taken as exactly 0 (so that bias never moves: BN
    subtracts the batch mean of ``a @ W + b``, b and all); a Maxout layer's is not 0 (each
    piece's bias decides where that piece wins) and is used as computed. gamma and beta
    are optimized like biases (no weight decay, and no L2 term in the loss). A last batch
    of one row joins the batch before it. Dropout's mask after hidden layer i is
    :func:`dropout_mask` of block 2i + 1 (the core's blocks: Linear, BN, Linear, BN, ...,
    Linear). Validation uses evaluation mode (the running statistics). ``settings`` are
    :func:`fit`'s (optimizer, lr, epochs, batch_size, ...).
    """
    params = [(W.copy(), b.copy()) for W, b in params]
    hidden = bn_hidden_count(params)
    state = {"running": [(m.copy(), v.copy()) for m, v in running or bn_initial(params)]}

    def step_grads(Xb, yb, wb, step):
        masks = None
        if dropout > 0:
            masks = [
                dropout_mask(dropout, seed, step, 2 * i + 1, len(Xb), params[2 * i][0].shape[-1])
                / (1 - dropout)
                for i in range(hidden)
            ]
        value, grads, stats = bn_data_loss_and_grads(params, activation, loss, Xb, yb, wb, masks)
        if activation != "maxout":  # BN subtracts the batch mean: the bias before it is inert
            for i in range(hidden):
                grads[2 * i] = (grads[2 * i][0], np.zeros_like(grads[2 * i][1]))
        state["running"] = bn_update_running(state["running"], stats, len(Xb))
        return value, grads

    decayed = []
    for i in range(len(params)):
        decayed += [i % 2 == 0, False]  # Linear/Maxout weights only: not biases, gamma or beta
    history = _train(
        params,
        decayed,
        step_grads,
        lambda Xv: bn_forward(params, activation, Xv, running=state["running"])[0],
        loss,
        X,
        y,
        order_seed=seed if shuffle else None,
        merge_single=True,
        **settings,
    )
    return params, state["running"], history


def _train(
    params,
    decayed,
    step_grads,
    evaluate,
    loss: str,
    X,
    y,
    *,
    epochs: int,
    batch_size: int,
    optimizer: str = "sgd",
    lr: float = 0.01,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
    lr_decay: float = 1.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    alpha: float = 0.99,
    clip_grad_norm: float | None = None,
    schedule: str = "constant",
    lr_min: float = 0.0,
    warmup_epochs: int = 0,
    set_lr: dict[int, float] | None = None,
    validation_data=None,
    sample_weight=None,
    order_seed: int | None = None,
    merge_single: bool = False,
):
    """The training loop of :func:`fit` and :func:`fit_batchnorm`: updates ``params`` (a list
    of (W, b) pairs) in place and returns the history. ``decayed[k]`` says whether the k-th
    array of the flattened params gets weight decay; ``step_grads(Xb, yb, wb, step)`` (step
    from 0) returns a batch's (data loss, gradients) and ``evaluate(Xv)`` the scores of the
    current parameters; ``order_seed`` shuffles the rows (:func:`epoch_orders`)."""
    flat = [arr for pair in params for arr in pair]  # W0, b0, W1, b1, ...
    m1 = [np.zeros_like(p) for p in flat]
    m2 = [np.zeros_like(p) for p in flat]
    b1, b2 = betas
    t = 0
    step = 0  # every batch's index in the fit, skipped ones included (dropout's counter)
    n = len(X)
    history = {"loss": [], "lr": []}
    if validation_data is not None:
        history["val_loss"] = []
        history[metric_name(loss)] = []
    rate = epoch_rates(lr, epochs, lr_decay, schedule, lr_min, warmup_epochs, set_lr or {})
    orders = None if order_seed is None else epoch_orders(order_seed, n, epochs)
    for epoch in range(epochs):
        lr = rate[epoch]
        history["lr"].append(lr)
        total = 0.0
        for lo, hi in batch_bounds(n, batch_size, merge_single):
            rows = slice(lo, hi) if orders is None else orders[epoch][lo:hi]
            Xb, yb = X[rows], y[rows]
            wb = None if sample_weight is None else sample_weight[rows]
            step += 1
            if wb is not None and not np.any(wb):
                continue
            value, grads = step_grads(Xb, yb, wb, step - 1)
            if weight_decay > 0 and optimizer != "adamw":  # AdamW's decay is no loss term
                value += (
                    0.5
                    * weight_decay
                    * sum(float(np.sum(p * p)) for p, dec in zip(flat, decayed) if dec)
                )
            total += len(Xb) * value
            t += 1
            flat_g = [g for pair in grads for g in pair]
            if clip_grad_norm is not None:
                # torch.nn.utils.clip_grad_norm_: every gradient times min(max/(norm+1e-6), 1).
                norm = np.sqrt(sum(float(np.sum(g * g)) for g in flat_g))
                flat_g = [g * min(clip_grad_norm / (norm + 1e-6), 1.0) for g in flat_g]
            for i, (p, g) in enumerate(zip(flat, flat_g)):
                if optimizer == "adamw":
                    if decayed[i]:  # decoupled: the weights shrink, the gradient stays
                        p *= 1.0 - lr * weight_decay
                elif decayed[i]:
                    g = g + weight_decay * p
                if optimizer == "rmsprop":
                    m2[i] = alpha * m2[i] + (1 - alpha) * g * g
                    avg = np.sqrt(m2[i]) + eps
                    if momentum == 0:
                        p -= lr * g / avg
                    else:
                        m1[i] = momentum * m1[i] + g / avg
                        p -= lr * m1[i]
                elif optimizer == "sgd":
                    if momentum == 0:
                        p -= lr * g
                    else:
                        m1[i] = momentum * m1[i] + g
                        p -= lr * (g + momentum * m1[i]) if nesterov else lr * m1[i]
                elif optimizer in ("adam", "adamw"):
                    m1[i] = b1 * m1[i] + (1 - b1) * g
                    m2[i] = b2 * m2[i] + (1 - b2) * g * g
                    p -= (lr / (1 - b1**t)) * m1[i] / (np.sqrt(m2[i]) / np.sqrt(1 - b2**t) + eps)
                else:
                    raise ValueError(optimizer)
        history["loss"].append(total / n)
        if validation_data is not None:
            Xv, yv, wv = (*validation_data, None)[:3]
            sv = evaluate(Xv)
            history["val_loss"].append(weighted_loss_fn(loss, sv, yv, wv)[0])
            history[metric_name(loss)].append(weighted_metric(loss, sv, yv, wv))
    return history


def epoch_rates(lr, epochs, lr_decay, schedule, lr_min, warmup, set_lr) -> list[float]:
    """The learning rate of every epoch, by the closed forms MLP.fit documents.

    Epoch e (from 0) trains at warm(e) * base(e): warm(e) = (e + 1)/(W + 1) below W epochs
    of warm-up, else 1; base(e) = lr * lr_decay**e, or for "cosine" PyTorch's
    CosineAnnealingLR from lr to lr_min over the epochs after the warm-up. A rate set after
    epoch k (from 1) is that of epoch k (from 0) on, times lr_decay per epoch after; it ends
    the warm-up and the cosine.
    """
    out = []
    taken = None  # (epoch from 0 of the rate set, the rate)
    for e in range(epochs):
        if taken is not None:
            rate = taken[1] * lr_decay ** (e - taken[0])
        else:
            if schedule == "cosine":
                span = epochs - warmup
                tc = max(e - warmup, 0)
                rate = lr_min + (lr - lr_min) * (1 + np.cos(np.pi * tc / span)) / 2
            elif schedule == "constant":
                rate = lr * lr_decay**e
            else:
                raise ValueError(schedule)
            if e < warmup:
                rate *= (e + 1) / (warmup + 1)
        out.append(float(rate))
        if e + 1 in set_lr:
            taken = (e + 1, set_lr[e + 1])
    return out


# --------------------------------------------------------------------------- data
def make_data(loss: str, n: int, d: int, k: int, rng: np.random.Generator, scale: float = 1.0):
    """Random inputs and matching targets for ``loss`` (k outputs)."""
    X = scale * rng.standard_normal((n, d))
    if loss in ("softmax", "svm"):
        y = rng.integers(0, k, size=n)
        y[:k] = np.arange(k)  # every class present
    elif loss == "mse":
        y = rng.standard_normal((n, k))
    elif loss in ("huber", "mae"):
        y = 1.5 * rng.standard_normal((n, k))  # both sides of huber's delta = 1
    elif loss in ("poisson", "half_poisson_deviance"):
        y = rng.poisson(1.5, size=(n, k)).astype(np.float64)
    else:
        y = rng.integers(0, 2, size=(n,) if k == 1 else (n, k)).astype(np.float64)
    return X, y
