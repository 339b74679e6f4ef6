"""The lecture's worked sigmoid neuron, f(w, x) = sigmoid(w0*x0 + w1*x1 + w2), via Linear + Sigmoid.

Lecture values: w = [2, -3, -3], x = [-1, -2]; forward 0.73; backward gives
dx = [0.39, -0.59] and dw = [-0.20, -0.39, 0.20] (the bias w2 gets 0.20).
The exact local gradient is sigma(1) * (1 - sigma(1)) = 0.196611933241...
(The lecture's f(x, y, z) = (x + y) z example is not an mlpfast API and is skipped.)
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import mlpfast

SIG1 = 1.0 / (1.0 + math.exp(-1.0))  # 0.7310585786300049
DSIG1 = SIG1 * (1.0 - SIG1)  # 0.19661193324148185


@pytest.fixture
def neuron():
    """Linear(2, 1) holding the lecture's weights, and a Sigmoid."""
    linear = mlpfast.Linear(2, 1, dtype="float64")
    linear.weight = [[2.0], [-3.0]]
    linear.bias = [-3.0]
    return linear, mlpfast.Sigmoid()


def test_exact_constants():
    # Guard the reference numbers themselves.
    assert SIG1 == pytest.approx(0.7310585786, abs=1e-10)
    assert DSIG1 == pytest.approx(0.196611933241, abs=1e-12)


def test_forward(neuron):
    linear, sigmoid = neuron
    z = linear.forward([[-1.0, -2.0]])
    np.testing.assert_allclose(z, [[1.0]], rtol=0, atol=1e-15)  # 2*-1 + -3*-2 - 3 = 1
    out = sigmoid.forward(z)
    assert out.shape == (1, 1)
    assert round(float(out[0, 0]), 2) == 0.73  # the lecture's figure
    assert float(out[0, 0]) == pytest.approx(SIG1, abs=1e-12)


def test_backward(neuron):
    linear, sigmoid = neuron
    sigmoid.forward(linear.forward([[-1.0, -2.0]]))
    dz = sigmoid.backward([[1.0]])
    np.testing.assert_allclose(dz, [[DSIG1]], rtol=0, atol=1e-12)
    dx = linear.backward(dz)

    # The lecture's two-decimal figures.
    np.testing.assert_array_equal(np.round(dx, 2), [[0.39, -0.59]])
    np.testing.assert_array_equal(np.round(linear.grad_weight, 2), [[-0.20], [-0.39]])
    np.testing.assert_array_equal(np.round(linear.grad_bias, 2), [0.20])

    # And the exact values: dx = w * dsigma, dw = x * dsigma, db = dsigma.
    np.testing.assert_allclose(dx, [[2 * DSIG1, -3 * DSIG1]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(linear.grad_weight, [[-1 * DSIG1], [-2 * DSIG1]], rtol=0, atol=1e-12)
    np.testing.assert_allclose(linear.grad_bias, [DSIG1], rtol=0, atol=1e-12)
