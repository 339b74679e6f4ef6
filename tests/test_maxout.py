"""Tests of mlpfast.Maxout: y = max_p (x @ W[p] + b[p]), first piece wins ties."""

from __future__ import annotations

import numpy as np
import pytest

import mlpfast
from mlpfast.gradcheck import check_layer


def numpy_maxout(x, W, b):
    """Forward pass and winning piece index (np.argmax: first piece wins ties)."""
    z = np.einsum("nd,pdo->pno", x, W) + b[:, None, :]
    idx = np.argmax(z, axis=0)
    return np.take_along_axis(z, idx[None], axis=0)[0], idx, z


def well_separated(rng, n=5, n_in=4, n_out=3, pieces=2):
    """A float64 Maxout layer and input whose best and second-best pieces differ by > 1e-2."""
    for _ in range(100):
        W = rng.standard_normal((pieces, n_in, n_out))
        b = rng.standard_normal((pieces, n_out))
        x = rng.standard_normal((n, n_in))
        z = np.sort(np.einsum("nd,pdo->pno", x, W) + b[:, None, :], axis=0)
        if np.min(z[-1] - z[-2]) > 1e-2:
            layer = mlpfast.Maxout(n_in, n_out, pieces, dtype="float64", seed=0)
            layer.weight = W
            layer.bias = b
            return layer, x
    pytest.fail("no well-separated maxout problem found")
    return None


def test_shapes_and_defaults():
    layer = mlpfast.Maxout(4, 3, seed=0)
    assert layer.pieces == 2  # default
    assert layer.weight.shape == (2, 4, 3)
    assert layer.bias.shape == (2, 3)
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.bias, 0.0)
    layer3 = mlpfast.Maxout(4, 3, pieces=3, dtype="float64", seed=0)
    assert layer3.weight.shape == (3, 4, 3) and layer3.bias.shape == (3, 3)


@pytest.mark.parametrize("pieces", [2, 3])
def test_forward_backward_match_numpy(rng, pieces):
    layer, x = well_separated(rng, n=6, pieces=pieces)
    W, b = layer.weight.copy(), layer.bias.copy()
    out = layer.forward(x)
    ref, idx, _ = numpy_maxout(x, W, b)
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-13)

    dout = rng.standard_normal(out.shape)
    dx = layer.backward(dout)
    dW = np.zeros_like(W)
    db = np.zeros_like(b)
    dx_ref = np.zeros_like(x)
    for p in range(pieces):
        dp = dout * (idx == p)
        dW[p] = x.T @ dp
        db[p] = dp.sum(axis=0)
        dx_ref += dp @ W[p].T
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.grad_weight, dW, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(layer.grad_bias, db, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("pieces", [2, 3])
def test_gradcheck(rng, pieces):
    layer, x = well_separated(rng, pieces=pieces)
    errs = check_layer(layer, x, seed=3)
    assert set(errs) == {"x", "weight", "bias"}
    for name, err in errs.items():
        assert err < 1e-7, (name, err)


def test_ties_first_piece_wins(rng):
    # Two identical pieces: every output is a tie, so all gradient goes to piece 0.
    layer = mlpfast.Maxout(3, 2, 2, dtype="float64", seed=0)
    W0 = rng.standard_normal((3, 2))
    layer.weight = np.stack([W0, W0])
    layer.bias = np.zeros((2, 2))
    x = rng.standard_normal((4, 3))
    out = layer.forward(x)
    np.testing.assert_allclose(out, x @ W0, rtol=1e-13, atol=1e-13)
    dout = rng.standard_normal((4, 2))
    dx = layer.backward(dout)
    np.testing.assert_allclose(layer.grad_weight[0], x.T @ dout, rtol=1e-13, atol=1e-13)
    np.testing.assert_array_equal(layer.grad_weight[1], 0.0)
    np.testing.assert_array_equal(layer.grad_bias[1], 0.0)
    np.testing.assert_allclose(dx, dout @ W0.T, rtol=1e-13, atol=1e-13)


def test_weight_view_is_live(rng):
    layer, x = well_separated(rng)
    w = layer.weight
    w[1] += 10.0  # in-place write through the view changes the layer's output
    ref, _, _ = numpy_maxout(x, w.copy(), layer.bias.copy())
    np.testing.assert_allclose(layer.forward(x), ref, rtol=1e-13, atol=1e-13)


def test_float32_outputs(rng):
    layer = mlpfast.Maxout(4, 3, seed=0)
    out = layer.forward(rng.standard_normal((5, 4)))
    assert out.dtype == np.float32
    dx = layer.backward(np.ones((5, 3)))
    assert dx.dtype == np.float32 and layer.grad_weight.dtype == np.float32
