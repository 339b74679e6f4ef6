"""float32 vs float64: same seed -> same weights up to rounding, outputs agree to ~1e-5.

Also checks that every output comes back in the object's dtype.
"""

from __future__ import annotations

import numpy as np
import numpy_reference as ref
import pytest

import mlpfast

CASES = [
    ("softmax", "relu", [6, 16, 12, 4]),
    ("svm", "tanh", [6, 10, 4]),
    ("mse", "sigmoid", [6, 10, 2]),
    ("bce", "elu", [6, 10, 1]),
    ("softmax", "maxout", [6, 10, 4]),
]
IDS = [f"{c[0]}-{c[1]}" for c in CASES]


def pair(loss, activation, sizes, seed=5):
    """The same model in float32 and float64."""
    m32 = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float32", seed=seed)
    m64 = mlpfast.MLP(sizes, activation=activation, loss=loss, dtype="float64", seed=seed)
    return m32, m64


@pytest.mark.parametrize(("loss", "activation", "sizes"), CASES, ids=IDS)
def test_same_seed_same_weights_up_to_rounding(loss, activation, sizes):
    m32, m64 = pair(loss, activation, sizes)
    assert m32.dtype == "float32" and m64.dtype == "float64"
    for l32, l64 in zip(m32.layers, m64.layers):
        if hasattr(l64, "weight"):
            assert l32.weight.dtype == np.float32 and l64.weight.dtype == np.float64
            # float32 weights are the float64 ones rounded to float32.
            np.testing.assert_array_equal(l32.weight, l64.weight.astype(np.float32))
            np.testing.assert_array_equal(l32.bias, l64.bias.astype(np.float32))


@pytest.mark.parametrize(("loss", "activation", "sizes"), CASES, ids=IDS)
def test_outputs_agree_across_dtypes(rng, loss, activation, sizes):
    m32, m64 = pair(loss, activation, sizes)
    X, y = ref.make_data(loss, 40, sizes[0], sizes[-1], rng)

    s32, s64 = m32.forward(X), m64.forward(X)
    assert s32.dtype == np.float32 and s64.dtype == np.float64
    np.testing.assert_allclose(s32, s64, rtol=1e-5, atol=1e-5 * np.abs(s64).max())

    l32, g32 = m32.loss(X, y)
    l64, g64 = m64.loss(X, y)
    assert isinstance(l32, float) and isinstance(l64, float)
    assert l32 == pytest.approx(l64, rel=1e-5)
    for (w32, b32), (w64, b64) in zip(g32, g64):
        assert w32.dtype == np.float32 and b32.dtype == np.float32
        assert w64.dtype == np.float64 and b64.dtype == np.float64
        np.testing.assert_allclose(w32, w64, rtol=1e-4, atol=1e-5 * np.abs(w64).max())
        np.testing.assert_allclose(b32, b64, rtol=1e-4, atol=1e-5 * np.abs(b64).max())

    p32, p64 = m32.predict(X), m64.predict(X)
    if loss == "mse":
        assert p32.dtype == np.float32 and p64.dtype == np.float64
        np.testing.assert_allclose(p32, p64, rtol=1e-5, atol=1e-5 * np.abs(p64).max())
    else:
        assert p32.dtype == np.int64 and p64.dtype == np.int64
        # Labels agree wherever the float64 decision is not a near-tie.
        if loss == "bce":
            clear = np.abs(s64[:, 0]) > 1e-4
        else:
            top2 = np.sort(s64, axis=1)[:, -2:]
            clear = (top2[:, 1] - top2[:, 0]) > 1e-4
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(p32[clear], p64[clear])
    assert m32.score(X, y) == pytest.approx(m64.score(X, y), abs=0.05)

    if loss in ("softmax", "bce"):
        q32, q64 = m32.predict_proba(X), m64.predict_proba(X)
        assert q32.dtype == np.float32 and q64.dtype == np.float64
        np.testing.assert_allclose(q32, q64, rtol=1e-5, atol=1e-6)


def test_fit_in_float32_tracks_float64(rng):
    # A short training run in both dtypes stays close (errors accumulate but stay small).
    m32, m64 = pair("softmax", "tanh", [6, 10, 4])
    X, y = ref.make_data("softmax", 50, 6, 4, rng)
    h32 = m32.fit(X, y, epochs=3, batch_size=16, lr=0.05, seed=1)
    h64 = m64.fit(X, y, epochs=3, batch_size=16, lr=0.05, seed=1)
    np.testing.assert_allclose(h32["loss"], h64["loss"], rtol=1e-4)
    for l32, l64 in zip(m32.layers, m64.layers):
        if hasattr(l64, "weight"):
            assert l32.weight.dtype == np.float32
            np.testing.assert_allclose(l32.weight, l64.weight, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "dtype", ["float32", "float64", np.float32, np.float64, np.dtype("float32")]
)
def test_dtype_argument_forms(dtype):
    want = np.dtype(dtype)
    assert mlpfast.Linear(3, 2, dtype=dtype, seed=0).weight.dtype == want
    assert mlpfast.Maxout(3, 2, dtype=dtype, seed=0).weight.dtype == want
    model = mlpfast.MLP([3, 4, 2], dtype=dtype, seed=0)
    assert model.dtype == want.name
    assert model.forward(np.ones((2, 3))).dtype == want


def test_layer_outputs_keep_layer_dtype():
    # A float32 layer fed float64 returns float32; a float64 layer fed float32 returns float64.
    x32 = np.ones((2, 3), dtype=np.float32)
    x64 = np.ones((2, 3), dtype=np.float64)
    l32 = mlpfast.Linear(3, 2, dtype="float32", seed=0)
    l64 = mlpfast.Linear(3, 2, dtype="float64", seed=0)
    assert l32.forward(x64).dtype == np.float32
    assert l32.backward(np.ones((2, 2))).dtype == np.float32
    assert l64.forward(x32).dtype == np.float64
    assert l64.backward(np.ones((2, 2), dtype=np.float32)).dtype == np.float64
