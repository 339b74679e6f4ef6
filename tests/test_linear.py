"""Tests of mlpfast.Linear: y = x @ weight + bias, its backward pass and parameter views."""

from __future__ import annotations

import numpy as np
import pytest

import mlpfast
from mlpfast.gradcheck import check_layer


def make_linear(rng, n_in=4, n_out=3, dtype="float64"):
    """A Linear layer with random (non-zero) weights and bias."""
    layer = mlpfast.Linear(n_in, n_out, dtype=dtype, seed=0)
    layer.weight = rng.standard_normal((n_in, n_out))
    layer.bias = rng.standard_normal(n_out)
    return layer


def test_shapes_dtype_and_zero_bias():
    layer = mlpfast.Linear(4, 3, seed=1)
    assert layer.weight.shape == (4, 3)
    assert layer.bias.shape == (3,)
    assert layer.dtype == "float32"  # the default dtype
    assert layer.weight.dtype == np.float32
    assert layer.in_features == 4 and layer.out_features == 3
    np.testing.assert_array_equal(layer.bias, np.zeros(3))
    assert np.all(layer.weight != 0)


def test_same_seed_same_weights_different_seed_different():
    a = mlpfast.Linear(5, 7, dtype="float64", seed=3)
    b = mlpfast.Linear(5, 7, dtype="float64", seed=3)
    c = mlpfast.Linear(5, 7, dtype="float64", seed=4)
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.array_equal(a.weight, c.weight)


def test_forward_matches_numpy(rng):
    layer = make_linear(rng)
    x = rng.standard_normal((5, 4))
    out = layer.forward(x)
    assert out.dtype == np.float64 and out.shape == (5, 3)
    np.testing.assert_allclose(out, x @ layer.weight + layer.bias, rtol=1e-13, atol=1e-13)


def test_backward_matches_numpy(rng):
    layer = make_linear(rng)
    x = rng.standard_normal((5, 4))
    dout = rng.standard_normal((5, 3))
    layer.forward(x)
    dx = layer.backward(dout)
    np.testing.assert_allclose(dx, dout @ layer.weight.T, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.grad_weight, x.T @ dout, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(layer.grad_bias, dout.sum(axis=0), rtol=1e-13, atol=1e-13)


def test_gradcheck(rng):
    layer = make_linear(rng, 4, 3)
    errs = check_layer(layer, rng.standard_normal((6, 4)), seed=1)
    assert set(errs) == {"x", "weight", "bias"}
    for name, err in errs.items():
        assert err < 1e-7, (name, err)


def test_gradcheck_single_row_single_output(rng):
    # Degenerate shapes: N=1, out=1.
    layer = make_linear(rng, 3, 1)
    errs = check_layer(layer, rng.standard_normal((1, 3)), seed=2)
    assert max(errs.values()) < 1e-7, errs


def test_weight_is_a_live_writeable_view(rng):
    layer = make_linear(rng)
    x = rng.standard_normal((2, 4))
    w = layer.weight
    assert w.flags.writeable
    w[0, 0] += 1.0  # writing into the view changes the layer
    np.testing.assert_allclose(layer.forward(x), x @ w + layer.bias, rtol=1e-13)
    assert layer.weight[0, 0] == w[0, 0]
    b = layer.bias
    b[:] = 5.0
    np.testing.assert_array_equal(layer.bias, [5.0, 5.0, 5.0])


def test_assignment_copies_values_in(rng):
    layer = mlpfast.Linear(4, 3, dtype="float64", seed=0)
    new = rng.standard_normal((4, 3))
    layer.weight = new
    np.testing.assert_array_equal(layer.weight, new)
    new[:] = 0.0  # the layer holds a copy, not our array
    assert np.all(layer.weight != 0)
    layer.bias = [1, 2, 3]  # nested list / ints accepted
    np.testing.assert_array_equal(layer.bias, [1.0, 2.0, 3.0])


def test_grads_are_fresh_arrays(rng):
    layer = make_linear(rng)
    layer.forward(rng.standard_normal((5, 4)))
    layer.backward(rng.standard_normal((5, 3)))
    g = layer.grad_weight
    expected = g.copy()
    g[:] = 0.0  # scribbling on a returned gradient must not affect the layer
    np.testing.assert_array_equal(layer.grad_weight, expected)
    gb = layer.grad_bias
    expected_b = gb.copy()
    gb[:] = 0.0
    np.testing.assert_array_equal(layer.grad_bias, expected_b)


def test_float32_layer_returns_float32(rng):
    layer = mlpfast.Linear(4, 3, seed=0)  # float32
    x = rng.standard_normal((5, 4))  # float64 input is converted
    out = layer.forward(x)
    assert out.dtype == np.float32
    w = layer.weight.astype(np.float64)
    np.testing.assert_allclose(out, x @ w, rtol=1e-5, atol=1e-5)
    dx = layer.backward(np.ones((5, 3)))
    assert dx.dtype == np.float32
    assert layer.grad_weight.dtype == np.float32 and layer.grad_bias.dtype == np.float32


@pytest.mark.parametrize("n", [1, 7, 64])
def test_batch_sizes(rng, n):
    layer = make_linear(rng, 6, 5)
    x = rng.standard_normal((n, 6))
    np.testing.assert_allclose(
        layer.forward(x), x @ layer.weight + layer.bias, rtol=1e-12, atol=1e-12
    )
