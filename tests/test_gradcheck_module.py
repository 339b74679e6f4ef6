"""Tests of mlpfast.gradcheck itself, on numpy functions and numpy fake layers.

These do not depend on the Rust core being right: they prove the checker finds
correct gradients correct and wrong gradients wrong, so that the layer and model
gradient checks elsewhere mean something.
"""

from __future__ import annotations

import numpy as np
import pytest

from mlpfast import gradcheck as gc


class NumpyLinear:
    """A numpy Linear layer with the mlpfast protocol (weight/bias views, grads)."""

    def __init__(self, w: np.ndarray, b: np.ndarray, bug: float = 0.0) -> None:
        self._w = w.astype(np.float64)
        self._b = b.astype(np.float64)
        self._bug = bug  # scales grad_weight by (1 + bug) to simulate a wrong backward
        self._x = None

    @property
    def weight(self) -> np.ndarray:
        return self._w  # a live view, like mlpfast's

    @property
    def bias(self) -> np.ndarray:
        return self._b

    def forward(self, x):
        self._x = x  # keeps a reference, like mlpfast
        return x @ self._w + self._b

    def backward(self, dout):
        self.grad_weight = (1.0 + self._bug) * (self._x.T @ dout)
        self.grad_bias = dout.sum(axis=0)
        return dout @ self._w.T


class NumpyTanh:
    """A parameter-free numpy activation with the mlpfast protocol."""

    def forward(self, x):
        self._x = x
        return np.tanh(x)

    def backward(self, dout):
        return dout * (1.0 - np.tanh(self._x) ** 2)


class NumpyModel:
    """Linear -> tanh -> Linear with a mean squared error, exposing ``layers``,
    ``param_layers`` and ``loss`` like MLP."""

    def __init__(self, rng: np.random.Generator, bug: bool = False) -> None:
        self.layers = [
            NumpyLinear(rng.standard_normal((3, 4)), rng.standard_normal(4)),
            NumpyTanh(),
            NumpyLinear(rng.standard_normal((4, 2)), rng.standard_normal(2)),
        ]
        self._bug = bug

    @property
    def param_layers(self):
        return self.layers[::2]

    def loss(self, X, y):
        h = X
        for layer in self.layers:
            h = layer.forward(h)
        d = h - y
        value = float(np.mean(d * d))
        dout = 2.0 * d / d.size
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        grads = [(layer.grad_weight.copy(), layer.grad_bias.copy()) for layer in self.layers[::2]]
        if self._bug:
            grads[1] = (grads[1][0], grads[1][1] * 1.001)
        return value, grads


def test_numerical_gradient_of_known_function(rng):
    # f(x) = sum(x^3) + sum(sin x): gradient 3x^2 + cos x.
    x = rng.standard_normal((3, 4))
    grad = gc.eval_numerical_gradient(lambda v: float(np.sum(v**3) + np.sum(np.sin(v))), x)
    assert grad.shape == x.shape
    assert gc.rel_error(grad, 3 * x**2 + np.cos(x)) < 1e-8


def test_numerical_gradient_restores_x_and_perturbs_in_place(rng):
    base = rng.standard_normal(6)
    before = base.copy()
    view = base[::2]  # a strided view: perturbations must reach `base`
    # f ignores its argument and reads the underlying memory, like a layer reading its weights.
    grad = gc.eval_numerical_gradient(lambda _: float(base[0] * 2.0 + base[4] ** 2), view)
    np.testing.assert_array_equal(base, before)  # restored bit for bit
    np.testing.assert_allclose(grad, [2.0, 0.0, 2 * before[4]], rtol=1e-9, atol=1e-12)


def test_numerical_gradient_array_of_known_function(rng):
    # f(x) = A @ x (x a matrix): d sum(f * df)/dx = A.T @ df.
    A = rng.standard_normal((5, 3))
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((5, 2))
    before = x.copy()
    grad = gc.eval_numerical_gradient_array(lambda v: A @ v, x, df)
    np.testing.assert_array_equal(x, before)
    assert gc.rel_error(grad, A.T @ df) < 1e-8


def test_numerical_gradient_array_elementwise(rng):
    x = rng.standard_normal(7)
    df = rng.standard_normal(7)
    grad = gc.eval_numerical_gradient_array(np.exp, x, df)
    assert gc.rel_error(grad, np.exp(x) * df) < 1e-8


def test_rel_error_definition():
    # |a-b| / max(1e-8, |a|+|b|), elementwise, then max; a Python float.
    assert gc.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert gc.rel_error(np.array([1.0, 2.0]), np.array([2.0, 2.0])) == pytest.approx(1.0 / 3.0)
    # Both zero: denominator floor of 1e-8 avoids 0/0.
    assert gc.rel_error(np.zeros(3), np.zeros(3)) == 0.0
    # Tiny absolute differences are measured against the 1e-8 floor.
    assert gc.rel_error(np.array([1e-12]), np.array([0.0])) == pytest.approx(1e-4)
    assert isinstance(gc.rel_error(np.ones(2), np.ones(2)), float)
    assert gc.rel_error(np.array([3.0, -1.0]), np.array([3.0, 1.0])) == pytest.approx(1.0)


def test_check_layer_on_correct_numpy_layer(rng):
    layer = NumpyLinear(rng.standard_normal((4, 3)), rng.standard_normal(3))
    w_before = layer.weight.copy()
    errs = gc.check_layer(layer, rng.standard_normal((5, 4)))
    assert set(errs) == {"x", "weight", "bias"}
    assert max(errs.values()) < 1e-8
    np.testing.assert_array_equal(layer.weight, w_before)  # views restored


def test_check_layer_detects_wrong_gradient(rng):
    layer = NumpyLinear(rng.standard_normal((4, 3)), rng.standard_normal(3), bug=1e-3)
    errs = gc.check_layer(layer, rng.standard_normal((5, 4)))
    assert errs["weight"] > 1e-4
    assert errs["x"] < 1e-8 and errs["bias"] < 1e-8


def test_check_layer_activation_has_only_x(rng):
    errs = gc.check_layer(NumpyTanh(), rng.standard_normal((4, 3)))
    assert set(errs) == {"x"}
    assert errs["x"] < 1e-8


def test_check_model_keys_and_values(rng):
    model = NumpyModel(rng)
    X = rng.standard_normal((6, 3))
    y = rng.standard_normal((6, 2))
    errs = gc.check_model(model, X, y)
    assert set(errs) == {"layers[0].weight", "layers[0].bias", "layers[2].weight", "layers[2].bias"}
    assert max(errs.values()) < 1e-8


def test_check_model_detects_wrong_gradient(rng):
    model = NumpyModel(rng, bug=True)
    X = rng.standard_normal((6, 3))
    y = rng.standard_normal((6, 2))
    errs = gc.check_model(model, X, y)
    assert errs["layers[2].bias"] > 1e-4
    assert errs["layers[0].weight"] < 1e-8
