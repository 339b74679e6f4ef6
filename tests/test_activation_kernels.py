"""The vectorized activation kernels against numpy, over the whole range of each dtype.

tanh, sigmoid and ELU are computed by mlpfast's own branch-free exp / expm1 / tanh, not libm's,
so that they vectorize. The reference here is numpy evaluated in extended precision
(``np.longdouble``: 64-bit mantissa on x86) and rounded once, so it is within half an ulp of the
exact value; the measured distance is in ulps, over ordinary values, ±0, subnormals, the
largest finite values, ±inf and NaN. Then every vector width the CPU has (``MLPFAST_SIMD``)
must give the same bits, in the kernels and in whole training runs with 1, 2 and 3 threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import mlpfast

DTYPES = [np.float32, np.float64]
# The largest distance from the extended-precision reference, in ulps: what the kernels
# measure on these inputs (forward: tanh 2, sigmoid 2 in float32 and 3 in float64, ELU 1;
# derivative at the input: tanh 4 in float32 and 3 in float64, sigmoid 4, ELU 1).
FORWARD_ULPS = {"sigmoid": 3, "tanh": 2, "elu": 1}
DERIVATIVE_ULPS = {"sigmoid": 4, "tanh": 4, "elu": 1}


def inputs(dtype) -> np.ndarray:
    """Ordinary values, powers of two from the smallest subnormal to the largest and the
    extremes, with both signs. (The layer API refuses non-finite input; ±inf and NaN reach
    the kernels inside a network, tested below.)"""
    info = np.finfo(dtype)
    rng = np.random.default_rng(0)
    dense = np.linspace(-60, 60, 200_001)
    scaled = rng.standard_normal(50_000) * rng.choice([1e-3, 1.0, 10.0, 200.0], 50_000)
    powers = np.ldexp(dtype(1), np.arange(info.minexp - info.nmant, info.maxexp))
    special = [0.0, info.tiny, info.max, info.smallest_subnormal, info.eps]
    magnitudes = np.concatenate([dense, scaled, powers, special]).astype(dtype)
    return np.concatenate([magnitudes, -magnitudes])


def reference(name: str, x: np.ndarray, derivative: bool = False) -> np.ndarray:
    """f(x) or f'(x), evaluated in extended precision and rounded to x's dtype."""
    v = x.astype(np.longdouble)
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        if name == "tanh":
            out = 1 / np.cosh(v) ** 2 if derivative else np.tanh(v)
        elif name == "sigmoid":
            e = np.exp(-np.abs(v))
            if derivative:
                out = e / (1 + e) ** 2
            else:
                out = np.where(v >= 0, 1 / (1 + e), e / (1 + e))
        else:  # elu, alpha = 1
            if derivative:
                out = np.where(v > 0, 1.0, np.exp(np.minimum(v, 0)))
            else:
                out = np.where(v > 0, v, np.expm1(np.minimum(v, 0)))
    return out.astype(x.dtype)


def ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance in units in the last place (0 where both are NaN; huge where one is)."""
    int_t = np.int32 if a.dtype == np.float32 else np.int64

    def ordered(v):
        i = v.view(int_t).astype(np.int64)
        return np.where(i < 0, np.iinfo(int_t).min - i, i)

    d = np.abs(ordered(a) - ordered(b))
    both_nan = np.isnan(a) & np.isnan(b)
    return np.where(both_nan, 0, d)


LAYERS = {"tanh": mlpfast.Tanh, "sigmoid": mlpfast.Sigmoid, "elu": mlpfast.ELU}


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_forward_is_within_a_few_ulp_over_the_whole_range(name, dtype):
    x = inputs(dtype)
    got = LAYERS[name]().forward(x)
    assert got.dtype == dtype
    want = reference(name, x)
    d = ulps(got, want)
    worst = int(np.argmax(d))
    assert d.max() <= FORWARD_ULPS[name], (name, x[worst], got[worst], want[worst], d.max())
    # Signed zeros keep their sign where f(x) ~ x.
    out = LAYERS[name]().forward(np.array([0.0, -0.0], dtype))
    expected = np.array({"sigmoid": [0.5, 0.5]}.get(name, [0.0, -0.0]), dtype)
    np.testing.assert_array_equal(out, expected)
    assert np.array_equal(np.signbit(out), np.signbit(expected))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_infinities_and_nan_inside_a_network(name, dtype):
    # The layer API refuses non-finite input, but inside a network a product that
    # overflows gives ±inf pre-activations: predict maps them as numpy does. (NaN in, NaN
    # out is checked on the kernels themselves, in rust/mlpfast-core/src/vmath.rs.)
    big = np.finfo(dtype).max
    model = mlpfast.MLP([2, 3, 3], activation=name, loss="mse", dtype=dtype, seed=0)
    first, _, last = model.layers
    # Row [big, 0] gives pre-activations [±inf, -inf, 0]: +inf for the saturating
    # functions, -inf again for ELU, whose f(+inf) = inf would turn the read-out to NaN.
    sign = -1.0 if name == "elu" else 1.0
    first.weight[...] = [[sign * big, -big, 0.0], [0.0, 0.0, 0.0]]
    first.bias[...] = 0.0
    last.weight[...] = np.eye(3)
    last.bias[...] = 0.0
    got = model.predict(np.array([[big, 0.0]], dtype))
    expected = {"tanh": [1.0, -1.0, 0.0], "sigmoid": [1.0, 0.0, 0.5], "elu": [-1.0, -1.0, 0.0]}
    np.testing.assert_array_equal(got, np.array([expected[name]], dtype))


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("name", list(LAYERS))
def test_derivative_at_the_input_is_within_a_few_ulp(name, dtype):
    x = inputs(dtype)
    layer = LAYERS[name]()
    layer.forward(x)
    got = layer.backward(np.ones_like(x))
    want = reference(name, x, derivative=True)
    d = ulps(got, want)
    worst = int(np.argmax(d))
    assert d.max() <= DERIVATIVE_ULPS[name], (name, x[worst], got[worst], want[worst], d.max())


# ------------------------------------------------------------------ every vector width
WORKER = r"""
import json, sys
import numpy as np
import mlpfast

out = {"level": mlpfast._core._simd_level()}
x32 = np.linspace(-30, 30, 10_007).astype(np.float32)
x64 = np.linspace(-60, 60, 10_007)
for name, cls in [("tanh", mlpfast.Tanh), ("sigmoid", mlpfast.Sigmoid), ("elu", mlpfast.ELU),
                  ("relu", mlpfast.ReLU), ("leaky_relu", mlpfast.LeakyReLU)]:
    for x in (x32, x64):
        layer = cls()
        y = layer.forward(x)
        dx = layer.backward(np.cos(x))
        out[f"{name}-{x.dtype}"] = [y.tobytes().hex(), dx.tobytes().hex()]
rng = np.random.default_rng(0)
X = rng.standard_normal((300, 12))
y = rng.integers(0, 4, 300)
for act in ["tanh", "sigmoid", "elu", "relu", "maxout"]:
    for dtype in ["float32", "float64"]:
        for opt in [dict(optimizer="sgd", momentum=0.9), dict(optimizer="adam")]:
            runs = []
            for threads in (1, 2, 3):
                mlpfast.set_num_threads(threads)
                m = mlpfast.MLP([12, 16, 8, 4], activation=act, dtype=dtype, seed=1)
                h = m.fit(X, y, epochs=3, batch_size=64, lr=0.05, seed=4, **opt)
                runs.append(b"".join(w.tobytes() + b.tobytes() for w, b in m._params()).hex()
                            + repr(h["loss"]))
            key = f"fit-{act}-{dtype}-{opt['optimizer']}"
            out[key] = runs
print(json.dumps(out))
"""


def run_at(level: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "MLPFAST_SIMD"}
    if level is not None:
        env["MLPFAST_SIMD"] = level
    proc = subprocess.run(
        [sys.executable, "-c", WORKER], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


def test_every_vector_width_gives_the_same_bits_and_thread_counts_agree_on_each():
    default = run_at(None)
    in_use, detected = default.pop("level")
    assert in_use == detected
    levels = ["baseline", "avx2", "avx512"]
    for level in levels[: levels.index(detected)]:
        capped = run_at(level)
        assert capped.pop("level") == [level, detected]
        for key, value in default.items():
            assert capped[key] == value, (level, key)
    for key, value in default.items():
        if key.startswith("fit-"):
            assert value[0] == value[1] == value[2], key
