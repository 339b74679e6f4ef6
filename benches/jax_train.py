"""The JAX contenders: the numpy contender's training (workloads.train_numpy) compiled by XLA.

A speed-minded user writes it one of two ways, and the benchmark times both:

* ``jax_step``: ``jax.jit`` of one whole SGD step (gather the batch's rows, forward, loss,
  ``jax.grad``, update), called in a Python loop over the batches;
* ``jax_scan``: the epoch's full batches as one jitted ``jax.lax.scan`` (the gathers inside
  it), then the jitted step for the last, partial batch when the batch size does not divide
  the samples.

Both draw each epoch's permutation from ``np.random.default_rng(seed)``, as train_numpy does,
so all three visit the samples in the same order: from the same starting weights they end
with the same weights, up to float rounding (benches/test_workloads.py checks it). The loss is
train_numpy's: softmax cross-entropy averaged over the batch, or the squared error averaged
over every element of the batch's scores. The data live as JAX arrays before the timing
starts, and ``JaxTrainer.prepare`` compiles every function for every batch shape outside the
timing, so compile time is excluded (it favours JAX). Training returns once the final
parameters are computed (``jax.block_until_ready``).

Importing this module turns on ``jax_enable_x64`` (float64 workloads need it); every array is
made with an explicit dtype, so float32 workloads stay float32.
"""

from __future__ import annotations

import warnings
from typing import Callable

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

# The hidden activations of mlpfast, as JAX writes them (leaky_relu slope 0.01, elu alpha 1).
ACTIVATIONS: dict[str, Callable] = {
    "identity": lambda z: z,
    "relu": jax.nn.relu,
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "leaky_relu": lambda z: jax.nn.leaky_relu(z, 0.01),
    "elu": jax.nn.elu,
}

Params = list  # [(W, b), ...], a pytree of JAX arrays


def make_loss(activation: str, loss: str) -> Callable:
    """loss(params, xb, yb): the mean loss of one batch, as train_numpy differentiates it."""
    act = ACTIVATIONS[activation]

    def batch_loss(params: Params, xb, yb):
        a = xb
        for W, b in params[:-1]:
            a = act(a @ W + b)
        W, b = params[-1]
        scores = a @ W + b
        if loss == "mse":
            return jnp.mean((scores - yb) ** 2)
        logp = jax.nn.log_softmax(scores, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    return batch_loss


class JaxTrainer:
    """The two JAX contenders of one workload: its data on the device and its compiled step
    and epoch."""

    def __init__(self, w, X: np.ndarray, y: np.ndarray, lr: float = 0.01, seed: int = 0):
        self.w, self.seed = w, seed
        self.X, self.y = jnp.asarray(X), jnp.asarray(y)
        self.n = X.shape[0]
        self.full = self.n // w.batch * w.batch  # rows in full batches
        grad = jax.grad(make_loss(w.activation, w.loss))

        def sgd_step(params: Params, X, y, idx) -> Params:
            g = grad(params, X[idx], y[idx])
            return jax.tree.map(lambda p, gp: p - lr * gp, params, g)

        def sgd_epoch(params: Params, X, y, batches) -> Params:
            def body(p, idx):
                return sgd_step(p, X, y, idx), None

            return jax.lax.scan(body, params, batches)[0]

        # The parameters are donated: XLA may update them in place, as numpy's -= does.
        self.step = jax.jit(sgd_step, donate_argnums=0)
        self.epoch = jax.jit(sgd_epoch, donate_argnums=0)
        self.compiled = False

    def device_params(self, params) -> Params:
        """A fresh copy of ``params`` on the device (the training consumes it)."""
        return [(jnp.array(W, copy=True), jnp.array(b, copy=True)) for W, b in params]

    def compile(self, params) -> None:
        """Compiles the step and the epoch for every batch shape the training uses."""
        order = np.arange(self.n)
        with warnings.catch_warnings():
            # Donation may be refused for some buffers on CPU; that costs a copy, no more.
            warnings.filterwarnings("ignore", message="Some donated buffers were not usable")
            self.step(self.device_params(params), self.X, self.y, order[: self.w.batch])
            if self.full < self.n:
                self.step(self.device_params(params), self.X, self.y, order[self.full :])
            if self.full:
                batches = order[: self.full].reshape(-1, self.w.batch)
                jax.block_until_ready(
                    self.epoch(self.device_params(params), self.X, self.y, batches)
                )
        self.compiled = True

    def train_step(self, params: Params) -> Params:
        """``jax_step``: the jitted step in a Python loop over the batches."""
        rng = np.random.default_rng(self.seed)
        for _ in range(self.w.epochs):
            perm = rng.permutation(self.n)
            for start in range(0, self.n, self.w.batch):
                params = self.step(params, self.X, self.y, perm[start : start + self.w.batch])
        return jax.block_until_ready(params)

    def train_scan(self, params: Params) -> Params:
        """``jax_scan``: one compiled scan over the full batches, the jitted step for the rest."""
        rng = np.random.default_rng(self.seed)
        for _ in range(self.w.epochs):
            perm = rng.permutation(self.n)
            if self.full:
                batches = perm[: self.full].reshape(-1, self.w.batch)
                params = self.epoch(params, self.X, self.y, batches)
            if self.full < self.n:
                params = self.step(params, self.X, self.y, perm[self.full :])
        return jax.block_until_ready(params)

    def prepare(self, kind: str, params) -> Callable[[], Params]:
        """For the timing: compiles (once), copies ``params`` to the device, and returns the
        training run of ``kind`` ("step" or "scan") to time."""
        if not self.compiled:
            self.compile(params)
        start = jax.block_until_ready(self.device_params(params))
        train = self.train_step if kind == "step" else self.train_scan
        return lambda: train(start)


def to_numpy(params: Params) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """(weights, biases) as numpy arrays, as train_numpy returns them."""
    return [np.asarray(W) for W, _ in params], [np.asarray(b) for _, b in params]
