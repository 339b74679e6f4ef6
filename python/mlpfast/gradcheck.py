"""Numerical gradient checking for mlpfast layers and models.

This module holds pure-numpy helpers (centered finite differences and the
cs231n relative error) plus two drivers, :func:`check_layer` and
:func:`check_model`, that compare the analytic gradients computed by mlpfast's
``backward`` / ``MLP.loss`` with numeric ones. Use float64 objects: in float32
the finite-difference noise dominates.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = [
    "check_layer",
    "check_model",
    "eval_numerical_gradient",
    "eval_numerical_gradient_array",
    "rel_error",
]


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Return the centered-difference gradient of the scalar function ``f`` at ``x``.

    ``x`` (a float numpy array, possibly a view into other memory) is perturbed in
    place one element at a time and restored afterwards, so ``f`` may read it
    directly or through the memory it views. The result has the shape of ``x``.
    """
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix].copy()
        x[ix] = old + h
        fxph = float(f(x))
        x[ix] = old - h
        fxmh = float(f(x))
        x[ix] = old
        grad[ix] = (fxph - fxmh) / (2.0 * h)
        it.iternext()
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Return the numeric gradient of ``sum(f(x) * df)`` with respect to ``x``.

    ``f`` is array-valued and ``df`` is the upstream gradient (shaped like
    ``f(x)``): ``grad[i] = sum((f(x + h e_i) - f(x - h e_i)) * df) / (2 h)``.
    ``x`` is perturbed in place element by element and restored.
    """
    df = np.asarray(df, dtype=np.float64)
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        ix = it.multi_index
        old = x[ix].copy()
        x[ix] = old + h
        pos = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old - h
        neg = np.array(f(x), dtype=np.float64, copy=True)
        x[ix] = old
        grad[ix] = np.sum((pos - neg) * df) / (2.0 * h)
        it.iternext()
    return grad


def rel_error(a: Any, b: Any) -> float:
    """Return ``max(|a - b| / max(1e-8, |a| + |b|))`` (the cs231n relative error)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def check_layer(layer: Any, x: Any, seed: int = 0) -> dict[str, float]:
    """Gradient-check one layer (``Linear``, ``Maxout``, ``BatchNorm``, ``Dropout`` or an
    activation) at input ``x``, in the layer's current mode (``train()`` / ``eval()``).

    Runs ``forward`` on ``x``, draws a random upstream gradient ``dout`` from
    ``np.random.default_rng(seed)``, takes the analytic gradients from ``backward``
    and compares them with numeric ones. Parameters are perturbed through the
    layer's live ``weight`` / ``bias`` views. Returns the relative errors keyed
    ``"x"`` and, for layers with parameters, ``"weight"`` and ``"bias"``.

    A layer with a random mask (``Dropout``, which has a ``step`` counter) is checked with
    its mask fixed: every forward replays the step of the first, so the numeric gradient
    differentiates the same function the analytic one does. (A training-mode ``BatchNorm``
    moves its running statistics on every forward; they do not enter its output.)
    """
    x = np.array(x, dtype=np.float64, copy=True)
    step = getattr(layer, "step", None)

    def forward(xx: np.ndarray) -> np.ndarray:
        if step is not None:
            layer.step = step  # the same mask as the analytic gradient's forward
        return np.asarray(layer.forward(xx))

    out = forward(x.copy())
    dout = np.random.default_rng(seed).standard_normal(out.shape)
    dx = np.array(layer.backward(dout), dtype=np.float64, copy=True)
    has_params = hasattr(layer, "weight") and hasattr(layer, "bias")
    if has_params:
        dw = np.array(layer.grad_weight, dtype=np.float64, copy=True)
        db = np.array(layer.grad_bias, dtype=np.float64, copy=True)

    # The layer caches a reference to its input, so always hand it a copy.
    def fx(xx: np.ndarray) -> np.ndarray:
        return np.array(forward(xx.copy()), dtype=np.float64, copy=True)

    errors = {"x": rel_error(dx, eval_numerical_gradient_array(fx, x, dout))}

    if has_params:
        x_fixed = x.copy()

        def fp(_: np.ndarray) -> np.ndarray:
            return np.array(forward(x_fixed.copy()), dtype=np.float64, copy=True)

        w = layer.weight
        errors["weight"] = rel_error(dw, eval_numerical_gradient_array(fp, w, dout))
        b = layer.bias
        errors["bias"] = rel_error(db, eval_numerical_gradient_array(fp, b, dout))

    # Leave the layer with a consistent cache (and grads) for the original input.
    forward(x.copy())
    layer.backward(dout)
    return errors


def _param_layers(model: Any) -> list[tuple[int, Any]]:
    """``(index in model.layers, layer)`` for the model's parameter layers."""
    index = {id(layer): i for i, layer in enumerate(model.layers)}
    return [(index[id(layer)], layer) for layer in model.param_layers]


def check_model(model: Any, X: Any, y: Any) -> dict[str, float]:
    """Gradient-check a whole ``mlpfast.MLP`` on data ``(X, y)``.

    The analytic gradients come from ``model.loss(X, y)``; numeric ones from
    perturbing every parameter layer's ``weight`` and ``bias`` views in place and
    re-evaluating ``model.loss(X, y)[0]``. Returns relative errors keyed like
    ``"layers[0].weight"``, ``"layers[0].bias"``, ``"layers[2].weight"``, ...
    A model with dropout layers in training mode is checked with their masks fixed: every
    evaluation replays the steps of the first, as :func:`check_layer` does for one layer.
    """
    masked = [(layer, layer.step) for layer in model.layers if hasattr(layer, "step")]

    def replay() -> None:
        for layer, step in masked:
            layer.step = step

    _, grads = model.loss(X, y)
    grads = [
        (np.array(gw, dtype=np.float64, copy=True), np.array(gb, dtype=np.float64, copy=True))
        for gw, gb in grads
    ]
    layers = _param_layers(model)
    if len(grads) != len(layers):
        raise ValueError(
            f"model.loss returned {len(grads)} gradient pairs for {len(layers)} parameter layers"
        )

    def f(_: np.ndarray) -> float:
        replay()
        return float(model.loss(X, y)[0])

    errors: dict[str, float] = {}
    for (i, layer), (gw, gb) in zip(layers, grads):
        w = layer.weight
        errors[f"layers[{i}].weight"] = rel_error(gw, eval_numerical_gradient(f, w))
        b = layer.bias
        errors[f"layers[{i}].bias"] = rel_error(gb, eval_numerical_gradient(f, b))
    return errors
