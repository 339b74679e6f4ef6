"""Tests of the elementwise activations: values, derivatives (incl. at the kink), dtypes."""

from __future__ import annotations

import numpy as np
import pytest
from numpy_reference import act_backward, act_forward

import mlpfast
from mlpfast.gradcheck import check_layer

# (constructor, reference name, alpha used by the reference)
ACTS = [
    (mlpfast.Identity, "identity", None),
    (mlpfast.Sigmoid, "sigmoid", None),
    (mlpfast.Tanh, "tanh", None),
    (mlpfast.ReLU, "relu", None),
    (mlpfast.LeakyReLU, "leaky_relu", 0.01),
    (mlpfast.ELU, "elu", 1.0),
]
IDS = [a[1] for a in ACTS]


def off_kink(rng, shape):
    """Random values with |x| >= 0.05, far from the relu family's kink at 0."""
    x = rng.uniform(0.05, 3.0, size=shape)
    return x * rng.choice([-1.0, 1.0], size=shape)


@pytest.mark.parametrize(("cls", "name", "alpha"), ACTS, ids=IDS)
def test_forward_backward_match_numpy(rng, cls, name, alpha):
    act = cls()
    x = off_kink(rng, (6, 5))
    dy = rng.standard_normal((6, 5))
    np.testing.assert_allclose(act.forward(x), act_forward(name, x, alpha), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(
        act.backward(dy), act_backward(name, x, dy, alpha), rtol=1e-13, atol=1e-15
    )


@pytest.mark.parametrize(("cls", "name", "alpha"), ACTS, ids=IDS)
def test_gradcheck(rng, cls, name, alpha):
    errs = check_layer(cls(), off_kink(rng, (5, 4)), seed=7)
    assert set(errs) == {"x"}
    assert errs["x"] < 1e-7, errs


@pytest.mark.parametrize(
    ("act", "expected"),
    [
        (mlpfast.ReLU(), 0.0),
        (mlpfast.LeakyReLU(), 0.01),
        (mlpfast.LeakyReLU(alpha=0.2), 0.2),
        (mlpfast.ELU(), 1.0),
        (mlpfast.ELU(alpha=0.5), 0.5),
    ],
    ids=["relu", "leaky", "leaky0.2", "elu", "elu0.5"],
)
def test_derivative_at_zero_is_left_side(act, expected):
    # At exactly x = 0 the relu family uses the x <= 0 side's derivative.
    x = np.zeros((1, 3))
    np.testing.assert_array_equal(act.forward(x), 0.0)
    np.testing.assert_allclose(act.backward(np.ones((1, 3))), expected, rtol=1e-15)


def test_custom_alpha(rng):
    x = off_kink(rng, (4, 4))
    leaky = mlpfast.LeakyReLU(alpha=0.2)
    elu = mlpfast.ELU(alpha=0.5)
    assert leaky.alpha == pytest.approx(0.2) and elu.alpha == pytest.approx(0.5)
    assert mlpfast.LeakyReLU().alpha == pytest.approx(0.01)
    assert mlpfast.ELU().alpha == pytest.approx(1.0)
    np.testing.assert_allclose(leaky.forward(x), act_forward("leaky_relu", x, 0.2), rtol=1e-14)
    np.testing.assert_allclose(elu.forward(x), act_forward("elu", x, 0.5), rtol=1e-14, atol=1e-15)
    dy = np.ones_like(x)
    np.testing.assert_allclose(elu.backward(dy), act_backward("elu", x, dy, 0.5), rtol=1e-13)


def test_saturating_activations_do_not_overflow():
    x = np.array([[-1000.0, -50.0, 0.0, 50.0, 1000.0]])
    s = mlpfast.Sigmoid().forward(x)
    t = mlpfast.Tanh().forward(x)
    e = mlpfast.ELU().forward(x)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(t)) and np.all(np.isfinite(e))
    np.testing.assert_allclose(
        s, [[0.0, 1.0 / (1.0 + np.exp(50.0)), 0.5, 1.0 / (1.0 + np.exp(-50.0)), 1.0]], atol=1e-300
    )
    np.testing.assert_allclose(t, [[-1.0, -1.0, 0.0, 1.0, 1.0]], atol=1e-15)
    np.testing.assert_allclose(e, [[-1.0, -1.0, 0.0, 50.0, 1000.0]], atol=1e-15)


@pytest.mark.parametrize(("cls", "name", "alpha"), ACTS, ids=IDS)
@pytest.mark.parametrize(
    ("in_dtype", "out_dtype"),
    [
        (np.float32, np.float32),
        (np.float64, np.float64),
        (np.float16, np.float64),
        (np.int32, np.float64),
        (np.int64, np.float64),
        (np.uint8, np.float64),
    ],
)
def test_dtype_rules(rng, cls, name, alpha, in_dtype, out_dtype):
    # float32 stays float32, float64 stays float64, anything else becomes float64.
    x = np.array([[-2, -1, 1], [2, 3, 4]]).astype(in_dtype)
    act = cls()
    y = act.forward(x)
    assert y.dtype == out_dtype
    ref = act_forward(name, x.astype(np.float64), alpha)
    tol = 1e-6 if out_dtype == np.float32 else 1e-14
    np.testing.assert_allclose(y, ref, rtol=tol, atol=tol)
    dx = act.backward(np.ones(x.shape, dtype=in_dtype))
    assert dx.dtype == out_dtype


def test_nested_list_input_gives_float64():
    y = mlpfast.ReLU().forward([[-1.0, 2.0], [3.0, -4.0]])
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, [[0.0, 2.0], [3.0, 0.0]])
