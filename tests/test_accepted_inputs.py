"""Every array argument accepts any float/int array or nested list of the right shape (X also
a boolean array, as the estimators do).

Fortran order, strided views, reversed views, integer arrays, float16 and nested
lists must give exactly the results of the equivalent C-contiguous array in the
object's dtype (the values are the same after conversion, so results are bit-equal).
"""

from __future__ import annotations

import numpy as np
import pytest

import mlpfast

D, C, N = 4, 3, 11


def variants(base):
    """(name, array-like, C-contiguous float64 equivalent) for ``base`` (N, D) float64."""
    wide = np.zeros((base.shape[0], 2 * base.shape[1]))
    wide[:, ::2] = base
    ints = np.round(base * 4).astype(np.int32)
    f16 = base.astype(np.float16)
    return [
        ("fortran", np.asfortranarray(base), base),
        ("strided", wide[:, ::2], base),
        ("reversed", base[::-1], np.ascontiguousarray(base[::-1])),
        ("int32", ints, ints.astype(np.float64)),
        ("int64", ints.astype(np.int64), ints.astype(np.float64)),
        ("float16", f16, f16.astype(np.float64)),
        ("list", base.tolist(), base),
        ("float32", base.astype(np.float32), base.astype(np.float32).astype(np.float64)),
    ]


VARIANT_NAMES = [v[0] for v in variants(np.zeros((2, 2)))]


def x_variants(base):
    """:func:`variants`, and a boolean X (0 and 1 after conversion), which the estimators'
    validation accepts and so does every method taking X."""
    return [*variants(base), ("bool", base > 0, (base > 0).astype(np.float64))]


X_VARIANT_NAMES = [v[0] for v in x_variants(np.zeros((2, 2)))]


@pytest.fixture
def data(rng):
    """Training data for a softmax model (values exact in float16 not required)."""
    X = rng.standard_normal((N, D))
    y = rng.integers(0, C, N)
    return X, y


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("which", X_VARIANT_NAMES)
def test_model_methods_accept_array_variants(data, which, dtype):
    X, y = data
    _, Xv, Xc = next(v for v in x_variants(X) if v[0] == which)
    model = mlpfast.MLP([D, 5, C], dtype=dtype, seed=0)
    np.testing.assert_array_equal(model.forward(Xv), model.forward(Xc))
    np.testing.assert_array_equal(model.predict(Xv), model.predict(Xc))
    np.testing.assert_array_equal(model.predict_proba(Xv), model.predict_proba(Xc))
    assert model.score(Xv, y) == model.score(Xc, y)
    lv, gv = model.loss(Xv, y)
    lc, gc = model.loss(Xc, y)
    assert lv == lc
    for (a, b), (c, d) in zip(gv, gc):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


@pytest.mark.parametrize("which", X_VARIANT_NAMES)
def test_fit_accepts_array_variants(data, which):
    X, y = data
    _, Xv, Xc = next(v for v in x_variants(X) if v[0] == which)
    a = mlpfast.MLP([D, 5, C], dtype="float64", seed=0)
    b = mlpfast.MLP([D, 5, C], dtype="float64", seed=0)
    ha = a.fit(Xv, y, epochs=2, batch_size=4, seed=3, lr=0.1)
    hb = b.fit(Xc, y, epochs=2, batch_size=4, seed=3, lr=0.1)
    assert ha["loss"] == hb["loss"]
    for la, lb in zip(a.layers, b.layers):
        if hasattr(la, "weight"):
            np.testing.assert_array_equal(la.weight, lb.weight)


@pytest.mark.parametrize(
    "y_variant",
    [
        lambda y: y.astype(np.int32),
        lambda y: y.astype(np.uint8),
        lambda y: y.astype(np.float64),  # integral floats are valid labels
        lambda y: y.tolist(),
        lambda y: np.ascontiguousarray(y[::-1])[::-1],  # a reversed view
        lambda y: np.repeat(y, 2)[::2],  # strided
    ],
    ids=["int32", "uint8", "float64", "list", "reversed-twice", "strided"],
)
def test_label_variants(data, y_variant):
    X, y = data
    model = mlpfast.MLP([D, 5, C], dtype="float64", seed=0)
    assert model.loss(X, y_variant(y))[0] == model.loss(X, y)[0]
    assert model.score(X, y_variant(y)) == model.score(X, y)


def test_mse_targets_accept_variants(rng):
    X = rng.standard_normal((N, D))
    t = rng.standard_normal((N, 2))
    model = mlpfast.MLP([D, 5, 2], loss="mse", dtype="float64", seed=0)
    expected = model.loss(X, t)[0]
    assert model.loss(X, np.asfortranarray(t))[0] == expected
    assert model.loss(X, t.tolist())[0] == expected
    wide = np.zeros((N, 4))
    wide[:, ::2] = t
    assert model.loss(X, wide[:, ::2])[0] == expected
    assert model.loss(X[::-1], t[::-1])[0] == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("which", VARIANT_NAMES)
def test_layers_accept_array_variants(rng, which):
    base = rng.standard_normal((N, D))
    _, xv, xc = next(v for v in variants(base) if v[0] == which)
    dout = rng.standard_normal((N, C))
    for layer_f in (
        lambda: mlpfast.Linear(D, C, dtype="float64", seed=1),
        lambda: mlpfast.Maxout(D, C, dtype="float64", seed=1),
    ):
        a, b = layer_f(), layer_f()
        np.testing.assert_array_equal(a.forward(xv), b.forward(xc))
        # The upstream gradient may also come in any layout.
        np.testing.assert_array_equal(a.backward(np.asfortranarray(dout)), b.backward(dout))
        np.testing.assert_array_equal(a.grad_weight, b.grad_weight)
        np.testing.assert_array_equal(a.grad_bias, b.grad_bias)
    # Activations keep the input's float dtype, so compare with a C-contiguous copy of it.
    out_v = mlpfast.Tanh().forward(xv)
    out_c = mlpfast.Tanh().forward(np.ascontiguousarray(np.asarray(xv)))
    assert out_v.dtype == out_c.dtype
    np.testing.assert_array_equal(out_v, out_c)


def test_weight_assignment_accepts_variants(rng):
    w = rng.standard_normal((D, C))
    layer = mlpfast.Linear(D, C, dtype="float64", seed=0)
    layer.weight = np.asfortranarray(w)
    np.testing.assert_array_equal(layer.weight, w)
    layer.weight = w[::-1][::-1].tolist()
    np.testing.assert_array_equal(layer.weight, w)
    layer.weight = np.arange(D * C, dtype=np.int32).reshape(D, C)
    np.testing.assert_array_equal(layer.weight, np.arange(D * C).reshape(D, C))
    wide = np.zeros((D, 2 * C))
    wide[:, ::2] = w
    layer.weight = wide[:, ::2]
    np.testing.assert_array_equal(layer.weight, w)


def test_loss_functions_accept_variants(rng):
    s = rng.standard_normal((N, C))
    y = rng.integers(0, C, N)
    ref = mlpfast.softmax_loss(s, y)
    for sv in (np.asfortranarray(s), s.tolist()):
        got = mlpfast.softmax_loss(sv, y.astype(np.int32))
        assert got[0] == ref[0]
        np.testing.assert_array_equal(got[1], ref[1])
    rev = mlpfast.softmax_loss(s[::-1], y[::-1])
    assert rev[0] == pytest.approx(ref[0], rel=1e-14)
    np.testing.assert_allclose(rev[1][::-1], ref[1], rtol=1e-14)


def test_misaligned_arrays_are_converted():
    # A buffer read at an odd byte offset is contiguous but misaligned: converted once, not
    # refused.
    buf = bytearray(4 * 24 + 1)
    x = np.frombuffer(buf, "<f4", offset=1, count=24).reshape(6, 4)
    x[...] = np.arange(24, dtype=np.float32).reshape(6, 4) / 10
    assert not x.flags.aligned
    model = mlpfast.MLP([4, 5, 3], seed=0)
    np.testing.assert_array_equal(model.predict(x), model.predict(x.copy()))
    layer = mlpfast.Linear(4, 3)
    w = np.frombuffer(bytearray(4 * 12 + 1), "<f4", offset=1, count=12).reshape(4, 3)
    layer.weight = w
    np.testing.assert_array_equal(layer.weight, np.zeros((4, 3), np.float32))
    model.fit(x, np.array([0, 1, 2, 0, 1, 2]), epochs=1, batch_size=2)
