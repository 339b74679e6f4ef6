"""The worker of tests/test_fuzz_api.py: property-based runs of mlpfast's whole public API.

Run by the test in a subprocess, one property per process, with a memory limit of its own
(RLIMIT_AS, 4 GiB: a huge allocation is a MemoryError or an abort, never the machine's)::

    python tests/fuzz_api_worker.py PROPERTY [--examples N] [--seed S]

``--list`` names the properties and their CI budgets; ``--survey FILE`` is a developer's
mode: every example in a forked child, no shrinking, each finding (crashes included)
appended to FILE as a JSON line, so that one run lists many distinct failures
(``FUZZ_TMP`` names where the children's stderr goes).

The properties: construct (MLP, Linear, Maxout, the activations, set_num_threads with sizes,
seeds, dtypes and names in and out of range or of the wrong type), model (forward, backward,
predict, predict_proba, decision_function, score, loss, l2_penalty, weights assigned or
written through views, pickle), fit (every setting, validation data, callbacks that stop,
raise, return oddities, predict, copy, write or refit during the fit), gates (Linear, Maxout
and the activations as gates: forward/backward in any order, inputs mutated or freed in
between, weights assigned, gradcheck, pickle), losses (the four loss functions), sklearn
(MLPClassifier and MLPRegressor: random hyperparameters and labels, fit, partial_fit, warm
starts, predict, predict_proba, score, pickle and file round trips) and files (save/load,
to_bytes/from_bytes, pickle, deepcopy, damaged bytes, bad paths).

Every example is a *plan*: lines of Python drawn by hypothesis before anything runs,
building arrays of random shapes, dtypes (float16/32/64, big-endian, long double, ints,
bool, complex, bytes, str, object), layouts (strided, negative strides, Fortran, read-only,
unaligned, broadcast, nested lists) and values (NaN, inf, huge, tiny, subnormal, -0.0), then
calling the API. The plan runs line by line in one namespace, so the lines run so far are an
exact reproducer, printed with every failure (and written to the file ``FUZZ_LAST_CALL``
names before each call, so that the parent can report a crash too).

Each API call must return, or raise ValueError, TypeError, MemoryError, an ArithmeticError
(FloatingPointError for a diverged fit; not OverflowError, Python's conversion error, which
means an argument was not checked: the README promises a ValueError or TypeError naming it)
or the documented RuntimeError (a second fit during a fit); anything else (PanicException,
an "internal error", AttributeError, SyntaxError...) fails. A call that raised must leave
every watched object (weights, biases, history; an estimator's attributes) bit for bit as it
was, except a fit that diverged or whose callback raised (changed, but never to non-finite
weights); calls that only read (predict, forward, save...) must leave it so even when they
return. Results are checked: shapes and dtypes, labels in range, probabilities in [0, 1],
finite training curves and weights after a fit, the same bits as for the C-contiguous input
in the model's dtype, numpy's values for a layer's forward, an activation, the softmax loss
and l2_penalty, exact round trips through files and pickle (weights, attributes and
predictions), and no NaN where inputs and weights are small enough (``MODERATE``) that
nothing can overflow in the dtype computed in.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import json
import math
import os
import re
import resource
import shutil
import sys
import tempfile
import traceback
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import mlpfast
import mlpfast.io

# --------------------------------------------------------------------------- the namespace
# What every plan runs in, and the first lines of every reproducer: the callbacks and
# layout helpers the plans name. One text, executed here and printed with a failure.
HEADER = '''\
import copy
import pickle
import tempfile

import numpy as np

import mlpfast
import mlpfast.io

nan, inf = float("nan"), float("inf")
tmp = tempfile.mkdtemp()  # the worker gives every example a fresh one


class CallbackError(Exception):
    """Raised by cb_raise: fit must pass it on as it is."""


def cb_none(info):
    return None


def cb_stop(info):
    return False


def cb_raise(info):
    raise CallbackError("raised by a callback")


def cb_str(info):
    return "stop?"


def cb_zero(info):
    return 0


def cb_np_false(info):
    return np.False_


def cb_array(info):
    return np.array([False, True])


def cb_huge(info):
    return 10**400


def _n_in(model):
    return model.layer_sizes[0] if isinstance(model, mlpfast.MLP) else model.n_features_in_


def cb_predict(info):
    info["model"].predict(np.zeros((3, _n_in(info["model"]))))


def cb_copy(info):
    model = info["model"]
    pickle.loads(pickle.dumps(model))
    mlpfast.io.from_bytes(mlpfast.io.to_bytes(model))


def cb_write(info):
    model = info["model"]
    mlp = model if isinstance(model, mlpfast.MLP) else model._mlp
    for layer in mlp.param_layers:
        try:
            layer.weight[...] = 0.0  # read-only during a fit: numpy's ValueError
        except ValueError:
            pass


def cb_refit(info):
    # A second fit of a model that is training must be refused with RuntimeError.
    model = info["model"]
    if not isinstance(model, mlpfast.MLP):
        return None
    n, k = model.layer_sizes[0], model.layer_sizes[-1]
    labels = model.loss_name in ("softmax", "svm") or (model.loss_name == "bce" and k == 1)
    y = np.zeros(2, dtype=np.int64) if labels else np.zeros((2, k))
    try:
        model.fit(np.zeros((2, n)), y, epochs=1)
    except RuntimeError:
        return None
    raise AssertionError("a fit from the model's own callback was not refused")


def strided(a):
    return np.repeat(a, 2, axis=-1)[..., ::2]


def negstride(a):
    return np.flip(np.ascontiguousarray(np.flip(a)))


def transposed(a):
    return np.ascontiguousarray(a.T).T


def readonly(a):
    return np.lib.stride_tricks.as_strided(a, writeable=False)


def frombuffer(a):
    return np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)


def unaligned(a):
    raw = bytearray(b"\\0" + a.tobytes())
    return np.frombuffer(raw, dtype=a.dtype, offset=1).reshape(a.shape)


def broadcast(a):
    return np.broadcast_to(a[:1], a.shape)
'''

BASE_NS: dict[str, Any] = {}
exec(HEADER, BASE_NS)
shutil.rmtree(BASE_NS.pop("tmp"))  # every example gets its own (Runner)
BASE_NS["get_num_threads"] = mlpfast.get_num_threads  # watched by set_num_threads' plans

ALLOWED = (ValueError, TypeError, MemoryError, ArithmeticError, RuntimeError)
# The RuntimeErrors the README documents: a second fit of a model that is training.
DOCUMENTED_RUNTIME = ("training already",)
ACTIVATIONS = list(mlpfast._core.ACTIVATIONS)
LOSSES = list(mlpfast._core.LOSSES)
# Losses whose predict gives an (n, k) array of real predictions (poisson's: e^output).
REGRESSION = ("mse", "half_squared_error", "huber", "mae", "poisson", "half_poisson_deviance")


class FuzzFailureError(AssertionError):
    """A broken property, with the reproducer in its message."""


# --------------------------------------------------------------------------- plans
@dataclass
class Step:
    """One line of a plan: ``[name = ]expression`` and how to judge it."""

    code: str
    needs: tuple[str, ...] = ()  # names the line uses: skipped while one is undefined
    api: bool = True  # an API call, judged; otherwise plain numpy setup that may fail
    watch: tuple[str, ...] = ()  # objects a refusal (and a pure call) must leave unchanged
    pure: bool = False  # only reads: the watched objects must be unchanged even on success
    check: str | None = None  # the name of the check the result must pass
    meta: dict = field(default_factory=dict)  # what the check needs
    paths: bool = False  # a file call: OSError is a fair refusal too

    def __repr__(self) -> str:
        return self.code


class Plan(list):
    """The steps of one example; printed as the Python it runs."""

    def __repr__(self) -> str:
        return "\n" + "\n".join(s.code for s in self)


# --------------------------------------------------------------------------- strategies
def odd(draw, percent: int) -> bool:
    """True ``percent`` % of the time; shrinks to False (the ordinary case)."""
    return draw(st.integers(0, 99)) >= 100 - percent


def choose(draw, usual: list, unusual: list, percent: int = 25):
    """A value from ``usual``, or ``percent`` % of the time from ``unusual``."""
    if unusual and odd(draw, percent):
        return draw(st.sampled_from(unusual))
    return draw(st.sampled_from(usual))


REAL_SPECIALS = [
    "nan", "inf", "-inf", "-0.0", "1e38", "3.4028235e38", "-3.4028235e38", "1e39", "1e300",
    "-1e300", "1.7976931348623157e308", "5e-324", "1e-45", "1e-310", "65504.0", "65520.0",
    "2.0**63", "2.0**64",
]  # fmt: skip
LABEL_SPECIALS = [
    "-1", "K", "K + 1", "2**31", "2**40", "2**63 - 1", "2**63", "2**64 - 1", "-2**63", "1.5",
    "0.5", "nan", "inf", "-0.0", "1.0",
]  # fmt: skip
BINARY_SPECIALS = ["0.5", "2.0", "-1.0", "nan", "inf", "-0.0", "1e-300", "1.0000001"]
DTYPES = {
    "real": (["<f8", "<f4"], ["<f2", ">f8", ">f4", "<g", "<i8", "<i4", "|i1", "<u8", "|u1",
                              "|b1", "|O", "<c16", "<U3", "|S3"]),
    "labels": (["<i8"], ["<i4", "<u8", "|u1", ">i8", "<f8", "<f4", "<f2", "|b1", "|O", "<U3",
                         "<c16"]),
    "binary": (["<f8", "<f4"], ["<i8", "|u1", "|b1", "<f2", "|O", "<U3"]),
}  # fmt: skip
LAYOUTS = ["strided", "negstride", "transposed", "readonly", "frombuffer", "unaligned",
           "broadcast", "list"]  # fmt: skip


def odd_shapes(shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    """Wrong shapes near ``shape``: empty, one column too many or few, 1-D, 3-D, 0-D."""
    if len(shape) == 1:
        (n,) = shape
        return [(max(n - 1, 0),), (n + 1,), (0,), (n, 1), (n, 2), (), (1, n)]
    if len(shape) == 3:  # maxout weights (pieces, in, out)
        p, n, d = shape
        return [(p + 1, n, d), (p, n, d + 1), (p, n + 1, d), (n, d), (p * n, d), (), (0, n, d),
                (p, n, d, 1)]  # fmt: skip
    n, d = shape
    return [(0, d), (n, 0), (n, d + 1), (n, max(d - 1, 0)), (d,), (n * d,), (1, n, d),
            (n, d, 1), (), (n + 1, d), (n, 2 * d)]  # fmt: skip


def literal(base: np.ndarray) -> str:
    """Python source that rebuilds ``base`` exactly (with HEADER's nan and inf)."""
    code = f"np.array({base.tolist()!r}, dtype={base.dtype.str!r})"
    if base.size == 0 or base.ndim == 0:
        code += f".reshape({base.shape!r})"
    return code


def _put(base: np.ndarray, index: int, value: Any) -> None:
    """``base.flat[index] = value``, converted as numpy's unsafe cast would."""
    if base.dtype.kind == "O":
        base.flat[index] = value
    elif base.dtype.kind in "US":
        base.flat[index] = str(value)
    else:
        try:
            with np.errstate(all="ignore"):
                base.flat[index] = np.array(value).astype(base.dtype)
        except (OverflowError, TypeError, ValueError):
            pass  # not representable at all: the value stays as drawn


@st.composite
def arrays(draw, shape: tuple[int, ...], family: str = "real", k: int = 2, wrong: int = 15):
    """Source of an array meant to have ``shape``: its dtype, layout, values and, ``wrong`` %
    of the time, its shape perturbed. ``family`` is "real", "labels" (class indices below
    ``k``) or "binary" (0/1 targets). With ``wrong=0`` the array is valid: shape, dtype and
    values as asked (any layout, any scale)."""
    if odd(draw, wrong):
        shape = draw(st.sampled_from(odd_shapes(shape)))
    usual, unusual = DTYPES[family]
    dtype = np.dtype(choose(draw, usual, unusual if wrong else [], 20))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    if family == "labels":
        values = rng.integers(0, max(k, 1), shape)
    elif family == "binary":
        values = rng.integers(0, 2, shape).astype(float)
    elif dtype.kind in "iub":
        values = rng.integers(-3 if dtype.kind == "i" else 0, 4, shape)
    else:
        scale = draw(st.sampled_from([1.0, 1e-3, 1e3, 1e30, 1e-30]))
        values = rng.standard_normal(shape) * scale
    with np.errstate(all="ignore"):
        base = np.array(values).astype(dtype)
    if dtype.kind == "f" and dtype.itemsize < 8:
        base = base.astype(dtype)  # rounded once, so the literal shows what is there
    specials = {"real": REAL_SPECIALS, "labels": LABEL_SPECIALS, "binary": BINARY_SPECIALS}
    if base.size and wrong and odd(draw, 25):
        choices = specials[family]
        if dtype.kind in "iu":
            info = np.iinfo(dtype)
            choices = [*choices, str(info.min), str(info.max)]
        for index, value in draw(
            st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from(choices)), max_size=3)
        ):
            _put(base, index % base.size, eval(value, {"nan": math.nan, "inf": math.inf, "K": k}))
    code = literal(base)
    if odd(draw, 40):
        layout = draw(st.sampled_from(LAYOUTS))
        numeric = dtype.kind not in "O"
        if layout == "list":
            code = f"{code}.tolist()"
        elif base.ndim >= 1 and (numeric or layout in ("strided", "negstride", "transposed")):
            if layout != "broadcast" or base.shape[0] >= 1:
                code = f"{layout}({code})"
        elif base.ndim >= 1 and layout == "readonly":
            code = f"readonly({code})"
    if base.ndim == 2 and odd(draw, 10):
        code = f"np.asfortranarray({code})"
    return code


class Names:
    """Fresh variable names for one plan."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"


def array_step(plan: Plan, names: Names, source: str, stem: str = "x") -> str:
    """Adds ``name = <source>`` to the plan and returns the name."""
    name = names(stem)
    plan.append(Step(f"{name} = {source}", api=False))
    return name


@dataclass
class ModelSpec:
    """An ordinary MLP a plan builds, and what its data look like."""

    sizes: list[int]
    activation: str
    loss: str
    dtype: str
    seed: int
    dropout: float = 0.0
    batch_norm: bool = False

    @property
    def d(self) -> int:
        return self.sizes[0]

    @property
    def k(self) -> int:
        return self.sizes[-1]

    def code(self) -> str:
        extra = f", dropout={self.dropout!r}" if self.dropout else ""
        extra += ", batch_norm=True" if self.batch_norm else ""
        return (
            f"mlpfast.MLP({self.sizes!r}, activation={self.activation!r}, "
            f"loss={self.loss!r}, dtype={self.dtype!r}, seed={self.seed}{extra}"
            # With dropout or batch normalization, in evaluation mode: the layer API's forward
            # is then a function of each row alone (fit trains in training mode whatever the
            # mode).
            + (").eval()" if extra else ")")
        )


@st.composite
def model_specs(draw) -> ModelSpec:
    loss = draw(st.sampled_from(LOSSES))
    d = draw(st.integers(1, 5))
    hidden = draw(st.lists(st.integers(1, 6), max_size=2))
    k = draw(st.integers(1 if loss in (*REGRESSION, "bce") else 2, 4))
    return ModelSpec(
        [d, *hidden, k],
        draw(st.sampled_from(ACTIVATIONS)),
        loss,
        draw(st.sampled_from(["float32", "float64"])),
        draw(st.integers(0, 3)),
        0.3 if odd(draw, 15) else 0.0,
        odd(draw, 8),
    )


def rows(draw) -> int:
    """A number of samples: mostly a few, now and then enough for several threads' work."""
    return draw(st.integers(1, 8)) if not odd(draw, 10) else draw(st.sampled_from([17, 64]))


def targets(draw, spec: ModelSpec, n: int, wrong: int = 15) -> str:
    """Source of targets for ``spec``'s loss: labels, 0/1 values or real values."""
    if spec.loss in ("softmax", "svm"):
        return draw(arrays((n,), "labels", spec.k, wrong))
    if spec.loss == "bce":
        return draw(arrays((n,) if spec.k == 1 else (n, spec.k), "binary", wrong=wrong))
    if spec.loss in ("poisson", "half_poisson_deviance"):
        # Counts must be >= 0: 0/1 values keep most draws valid (wrong ones test refusal).
        return draw(arrays((n, spec.k), "binary", wrong=wrong))
    return draw(arrays((n, spec.k), "real", wrong=wrong))


# --------------------------------------------------------------------------- settings
# Every fit setting: (usual values, unusual ones), as Python source.
FIT_SETTINGS: dict[str, tuple[list[str], list[str]]] = {
    "epochs": (["1", "2", "3"], ["0", "-1", "2**31", "2**40", "2**62", "2**63 - 1", "2**63",
                                 "2**64", "1.5", "'2'", "None", "True", "np.int64(2)",
                                 "np.uint64(2**64 - 1)"]),
    "batch_size": (["1", "2", "4", "64"], ["0", "-1", "10**6", "2**31", "2**40", "2**63",
                                           "2**64", "2.0", "None", "True"]),
    "optimizer": (["'sgd'", "'adam'", "'adamw'", "'rmsprop'"],
                  ["'SGD'", "'adagrad'", "''", "None", "1", "'lbfgs'", "'adam\\0'"]),
    "lr": (["0.01", "0.1", "1e-3"], ["0.0", "-1.0", "nan", "inf", "10.0", "1e39", "1e300",
                                     "5e-324", "1e-46", "10**400", "'0.1'", "None", "True",
                                     "1", "np.float32(0.1)", "np.float16(0.1)"]),
    "momentum": (["0.0", "0.5", "0.9"], ["0.999999", "1.0", "-0.1", "nan", "1e39",
                                         "1 - 1e-17", "True"]),
    "nesterov": (["False", "True"], ["None", "1", "'yes'", "np.bool_(True)"]),
    "weight_decay": (["0.0", "1e-4", "0.1"], ["-1.0", "nan", "inf", "1e39", "1e300",
                                              "5e-324", "10**400"]),
    "lr_decay": (["1.0", "0.5", "0.99"], ["0.0", "-1.0", "nan", "inf", "1e39", "1e300",
                                          "5e-324", "2.0"]),
    "shuffle": (["True", "False"], ["None", "1", "'no'"]),
    "seed": (["0", "1", "None"], ["-1", "2**63", "2**64", "2**64 - 1", "-2**63", "1.5",
                                  "'1'", "True", "np.uint64(2**64 - 1)"]),
    "verbose": (["False"], ["True", "None", "1"]),
    "betas": (["(0.9, 0.999)", "(0.5, 0.9)"], ["(0.0, 0.0)", "(1.0, 0.999)", "(0.9, 1.0)",
                                               "(nan, 0.9)", "(0.9,)", "(0.9, 0.999, 0.5)",
                                               "[0.9, 0.999]", "None", "('a', 'b')",
                                               "(-0.1, 0.9)", "(1 - 1e-17, 0.999)",
                                               "(0.9, 1 - 1e-17)"]),
    "eps": (["1e-8", "1e-6"], ["0.0", "-1.0", "nan", "inf", "1e-46", "5e-324", "1e39",
                               "1e-300"]),
    "alpha": (["0.99", "0.9"], ["1.0", "-0.1", "nan", "1 - 1e-17", "'0.9'", "None"]),
    "clip_grad_norm": (["None", "1.0", "0.1"], ["0.0", "-1.0", "nan", "inf", "1e-50", "1e39",
                                                "'1'"]),
    "schedule": (["'constant'", "'invscaling'", "'adaptive'", "'cosine'"],
                 ["''", "'Constant'", "None", "1", "'optimal'"]),
    "lr_min": (["0.0", "1e-4"], ["-1.0", "nan", "inf", "1.0", "None"]),
    "warmup_epochs": (["0", "1", "2"], ["-1", "1.5", "2**63", "None", "True"]),
    "power_t": (["0.5", "0.25"], ["0.0", "-1.0", "nan", "inf", "1e300", "1e39"]),
    "tol": (["1e-4", "0.0"], ["-1.0", "nan", "inf", "1e300"]),
    "n_iter_no_change": (["None", "1", "2"], ["0", "-1", "2**31", "2**63", "2**64", "1.5",
                                              "np.inf"]),
    "resume": (["False", "True"], ["None", "1"]),
    "callbacks": (["None", "cb_none", "[cb_none, cb_stop]"],
                  ["cb_stop", "cb_raise", "cb_str", "cb_zero", "cb_np_false", "cb_array",
                   "cb_huge", "cb_refit", "cb_predict", "cb_copy", "cb_write", "1",
                   "[cb_none, 'x']", "[]", "(cb_none,)", "iter([cb_none])"]),
}  # fmt: skip
# Keywords fit does not take.
UNKNOWN_KEYWORDS = ["learning_rate=0.1", "rho=0.9", "sample_weights=None", "epoch=1"]
# Settings computed in the model's dtype: a float32 model must refuse values float32 cannot
# hold (1e39 becomes inf, 1e-46 becomes 0) instead of training on inf or 0.
FLOAT32_SETTINGS = ("lr", "weight_decay", "eps", "clip_grad_norm")


def evaluate(source: str) -> Any:
    """The value of a setting's source, or None if it does not evaluate."""
    try:
        return eval(source, BASE_NS)
    except Exception:
        return None


def big_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value > 50


def fit_keywords(draw, percent: int = 35, unusual: int = 25) -> dict[str, str]:
    """Random fit settings: each one present ``percent`` % of the time."""
    kw = {}
    for name, (usual, strange) in FIT_SETTINGS.items():
        if odd(draw, percent):
            kw[name] = choose(draw, usual, strange, unusual)
    if big_int(evaluate(kw.get("epochs", "1"))):
        # A fit of 2**40 epochs must be refused or stop: cb_stop ends it after one.
        more = kw.get("callbacks", "[]")
        kw["callbacks"] = f"[cb_stop, {'*' if more[0] in '[(' else ''}{more}]"
    if kw.get("nesterov") == "True":
        kw.setdefault("momentum", "0.9")  # Nesterov needs momentum > 0
    return kw


def keywords_source(kw: dict[str, str], extra: list[str] = ()) -> str:
    return ", ".join([*(f"{k}={v}" for k, v in kw.items()), *extra])


# --------------------------------------------------------------------------- the runner
_LAST_FD: int | None = None
_RECORDS: list[dict] | None = None  # the survey's findings; None: raise at the first one


def _write_last(text: str) -> None:
    """The reproducer so far, where the parent finds it if this process dies."""
    if _LAST_FD is not None:
        data = text.encode("utf-8", "replace")
        os.ftruncate(_LAST_FD, 0)
        os.pwrite(_LAST_FD, data, 0)


@contextlib.contextmanager
def quiet():
    """Progress lines and bars of verbose fits go nowhere (Rust's stderr stays)."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def canon(value: Any, depth: int = 0) -> Any:
    """A comparable, exact picture of a value: arrays by their bytes, floats by their bits."""
    if depth > 6:
        return "..."
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return ("O", value.shape, repr(value.tolist()))
        return (value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
    if isinstance(value, float):
        return ("f", float(value).hex() if not math.isnan(value) else "nan")
    if isinstance(value, (list, tuple)):
        return tuple(canon(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), canon(v, depth + 1)) for k, v in value.items()))
    if isinstance(value, mlpfast.MLP):
        return state(value)
    if isinstance(value, (int, str, bool, type(None), np.generic)):
        return repr(value)
    return type(value).__name__  # generators, random states: not the model's state


def params_of(obj: Any) -> list[np.ndarray]:
    """The weight and bias arrays of a model, layer or fitted estimator."""
    if isinstance(obj, mlpfast.MLP):
        return [a for lay in obj.param_layers for a in (lay.weight, lay.bias)]
    if isinstance(obj, (mlpfast.Linear, mlpfast.Maxout)):
        return [obj.weight, obj.bias]
    if hasattr(obj, "_mlp"):
        return params_of(obj._mlp)
    return []


def state(obj: Any) -> Any:
    """Everything a refused call must leave as it was."""
    try:
        if isinstance(obj, mlpfast.MLP):
            return (
                "MLP",
                canon(params_of(obj)),
                canon(obj.history),
                obj.samples_seen,
                canon(obj.learning_rate),
            )
        if isinstance(obj, (mlpfast.Linear, mlpfast.Maxout)):
            return ("layer", canon(params_of(obj)))
        if hasattr(obj, "get_params"):  # an estimator: its fitted attributes and network
            return ("estimator", canon(dict(vars(obj))))
        if obj is mlpfast.get_num_threads:
            return ("threads", obj())
    except BaseException as exc:  # a model the API cannot even read: judged elsewhere
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return ("unreadable", type(exc).__name__)
    return None


# Below these magnitudes of inputs and parameters nothing in a forward, backward or loss can
# overflow (6 units a layer, 3 layers, squared): NaN there is a defect, not an overflow.
MODERATE = {"float32": 1e3, "float64": 1e30}


def moderate(runner: Runner, names: tuple[str, ...], watched: list) -> bool:
    """Whether the arrays ``names`` and the watched objects' parameters are all finite and
    small enough for the dtype the call computes in that no finite result may be NaN."""
    dtypes = [getattr(getattr(o, "_mlp", o), "dtype", None) for o in watched]
    values = [a for o in watched for a in params_of(o)]
    for name in names:
        obj = runner.ns.get(name)
        arr = None if any(obj is o for o in watched) else float_array(obj)
        if arr is not None:
            values.append(arr)
            if arr.dtype.kind == "f" and np.asarray(obj).dtype.itemsize <= 4:
                dtypes.append("float32")
    dtype = "float32" if "float32" in dtypes else "float64"
    try:
        return all(np.abs(np.asarray(a, np.float64)).max(initial=0) <= MODERATE[dtype]
                   for a in values)  # fmt: skip
    except Exception:
        return False


def all_finite(obj: Any) -> bool:
    try:
        return all(np.isfinite(a).all() for a in params_of(obj))
    except Exception:
        return False


def float_array(value: Any) -> np.ndarray | None:
    """``value`` as a float64 array, or None if it is not numeric."""
    try:
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            return None
        with np.errstate(all="ignore"):
            return arr.astype(np.float64)
    except Exception:
        return None


def has_nan(value: Any) -> bool:
    arr = float_array(value)
    return arr is not None and bool(np.isnan(arr).any())


def norm_message(text: str) -> str:
    """A message with its numbers blanked, for grouping findings."""
    text = re.sub(r"0x[0-9a-f]+", "0x…", str(text))
    return re.sub(r"-?\d[\d_.e+-]*", "N", text)[:120]


class Runner:
    """Executes a plan line by line and judges every API call."""

    def __init__(self, prop: str) -> None:
        self.prop = prop
        self.ns: dict[str, Any] = dict(BASE_NS, tmp=tempfile.mkdtemp())
        self.lines: list[str] = []

    def script(self) -> str:
        return "\n".join([HEADER, *self.lines])

    def fail(self, step: Step, what: str, detail: str = "") -> None:
        call = re.sub(r"^\w+ = ", "", step.code)
        head = re.match(r"[\w.]+", call)
        name = re.sub(r"\b[a-z]+\d+\b", "obj", head.group(0) if head else call[:20])
        report = (
            f"{what}\n--- reproducer (Python; the last line fails) ---\n{self.script()}\n"
            f"--- observed ---\n{detail}"
        )
        if _RECORDS is None:
            raise FuzzFailureError(report)
        _RECORDS.append(
            {
                "prop": self.prop,
                "key": f"{name}: {norm_message(what)}",
                "what": what,
                "script": "\n".join(self.lines),
                "detail": detail[-2000:],
            }
        )

    def run(self, plan: Plan) -> None:
        for step in plan:
            if any(n not in self.ns for n in step.needs):
                continue
            if not step.api:
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        exec(step.code, self.ns)
                except Exception:
                    continue  # numpy refused the setup (a read-only array...): skip it
                self.lines.append(step.code)
                continue
            if "optional" in step.meta and not hasattr(
                self.ns[step.needs[0]], step.meta["optional"]
            ):
                continue  # scikit-learn hides predict_proba etc. where they do not apply
            self.call(step)

    def call(self, step: Step) -> None:
        match = re.match(r"^(\w+) = (.*)$", step.code, re.S)
        target, expr = (match.group(1), match.group(2)) if match else (None, step.code)
        # `layer.weight = w` is a statement: executed, its result None.
        statement = target is None and re.match(r"^[\w.\[\]-]+ = ", step.code) is not None
        self.lines.append(step.code)
        _write_last(self.script())
        watched = [self.ns[n] for n in step.watch if n in self.ns]
        before = [state(o) for o in watched]
        small = moderate(self, step.needs, watched)  # then NaN in a result is a defect
        try:
            with quiet(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = exec(expr, self.ns) if statement else eval(expr, self.ns)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self.refused(step, exc, watched, before)
            return
        if target:
            self.ns[target] = result
        if step.pure:
            for obj, snap in zip(watched, before):
                if state(obj) != snap:
                    self.fail(step, "a call that only reads changed the model")
        if step.check:
            try:
                problem = CHECKS[step.check](self, step, result, small)
            except FuzzFailureError:
                raise
            except Exception:
                problem = "the result could not be checked:\n" + traceback.format_exc()
            if problem:
                self.fail(step, problem, f"result: {short(result)}")

    def refused(self, step: Step, exc: BaseException, watched: list, before: list) -> None:
        detail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        kind = type(exc).__name__
        message = str(exc)
        from_callback = isinstance(exc, self.ns["CallbackError"])
        trains = step.meta.get("trains", False)
        if kind == "PanicException":
            return self.fail(step, f"Rust panic (PanicException): {message}", detail)
        if from_callback:
            pass  # the callback's own exception, passed on as it should be
        elif isinstance(exc, OverflowError):
            return self.fail(step, f"OverflowError instead of ValueError: {message}", detail)
        elif isinstance(exc, ZeroDivisionError):
            return self.fail(step, f"ZeroDivisionError: {message}", detail)
        elif isinstance(exc, RuntimeError):
            if "internal error" in message:
                return self.fail(step, f"internal error (a caught panic): {message}", detail)
            if not any(d in message for d in DOCUMENTED_RUNTIME):
                return self.fail(step, f"undocumented RuntimeError: {message}", detail)
        elif isinstance(exc, OSError) and step.paths:
            pass
        elif not isinstance(exc, ALLOWED):
            return self.fail(step, f"{kind} is not a documented error: {message}", detail)
        unsigned_y = step.meta.get("unsigned") and message.startswith("y")
        if isinstance(exc, ValueError) and "got -" in message and unsigned_y:
            return self.fail(step, f"an unsigned value reported as negative: {message}", detail)
        # A fit that diverged keeps the last finite step's weights (an estimator reports it as
        # scikit-learn's ValueError, caused by the FloatingPointError), and one whose callback
        # raised keeps the epochs before it: changed, but never to NaN. Everything else
        # must leave the objects exactly as they were.
        diverged = isinstance(exc, FloatingPointError) or isinstance(
            exc.__cause__, FloatingPointError
        )
        changes_allowed = from_callback or (trains and (diverged or "training already" in message))
        for obj, snap in zip(watched, before):
            if changes_allowed:
                if not all_finite(obj):
                    return self.fail(step, f"{kind} left non-finite weights", detail)
            elif state(obj) != snap:
                return self.fail(step, f"the refused call ({kind}) changed the model", detail)


def short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 600 else text[:600] + "..."


# --------------------------------------------------------------------------- checks
def input_array(runner: Runner, step: Step, key: str = "x") -> np.ndarray | None:
    name = step.meta.get(key)
    return None if name is None else float_array(runner.ns.get(name))


def same_bits(a: Any, b: Any) -> bool:
    return canon(a) == canon(b)


def checked_against_references(runner: Runner, step: Step, out: Any) -> str | None:
    """The step's numpy reference, when it has one, then the canonical rerun."""
    if step.meta.get("reference"):
        problem = REFERENCES[step.meta["reference"]](runner, step, out)
        if problem:
            return problem
    return canonical_rerun(runner, step, out)


def canonical_rerun(runner: Runner, step: Step, result: Any) -> str | None:
    """The result for the same input as a C-contiguous array in the model's dtype."""
    source = step.meta.get("canonical")
    if not source:
        return None
    try:
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            again = eval(source, runner.ns)
    except Exception as exc:
        return f"the same input as a C-contiguous array is refused ({exc!r}) but this one is not"
    if not same_bits(result, again):
        return f"differs from the C-contiguous input's result {short(again)}"
    return None


def check_forward(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    x = input_array(runner, step)
    width, dtype = step.meta["width"], step.meta.get("dtype")
    if not isinstance(out, np.ndarray):
        return f"returned a {type(out).__name__}, not an array"
    if x is not None and step.meta.get("same_shape"):
        if out.shape != x.shape:
            return f"shape {out.shape} for an input of shape {x.shape}"
    elif x is None or out.shape != (x.shape[0], width) or x.ndim != 2:
        return f"shape {out.shape} for an input of shape {None if x is None else x.shape}"
    if dtype and out.dtype != np.dtype(dtype):
        return f"dtype {out.dtype}, expected {dtype}"
    if finite and has_nan(out):
        return "NaN from finite input and weights (an overflow inside, not reported)"
    return checked_against_references(runner, step, out)


def check_backward(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """The input's gradient: a row per row of dout and ``width`` columns, or for an
    elementwise activation (no ``width``) dout's shape."""
    if not isinstance(out, np.ndarray):
        return f"returned a {type(out).__name__}, not an array"
    dout = input_array(runner, step)
    if dout is None or ("width" in step.meta and dout.ndim != 2):
        return f"accepted dout of shape {None if dout is None else dout.shape}"
    shape = (dout.shape[0], step.meta["width"]) if "width" in step.meta else dout.shape
    if out.shape != shape:
        return f"gradient of shape {out.shape}, expected {shape}"
    if finite and has_nan(out):
        return "NaN gradient from finite input and weights"
    return None


def check_predict(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """Raw outputs (n, k) for a regression loss, 0/1 labels (n, k) for bce with k outputs,
    class indices (n,) otherwise (bce with one output: 0/1)."""
    x = input_array(runner, step)
    loss, k = step.meta["loss"], step.meta["k"]
    if not isinstance(out, np.ndarray) or x is None or x.ndim != 2:
        return f"{type(out).__name__} for input {None if x is None else x.shape}"
    n = x.shape[0]
    if loss in REGRESSION:
        if out.shape != (n, k):
            return f"shape {out.shape}, expected {(n, k)}"
        if finite and has_nan(out):
            return "NaN predictions from finite input and weights"
    else:
        shape = (n, k) if loss == "bce" and k > 1 else (n,)
        if out.shape != shape:
            return f"shape {out.shape}, expected {shape}"
        top = 2 if loss == "bce" else k
        if out.dtype.kind not in "iu" or (out.size and (out.min() < 0 or out.max() >= top)):
            return f"classes outside 0..{top - 1}: {out!r}"
    return canonical_rerun(runner, step, out)


def check_proba(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """softmax: rows summing to 1; bce: [1 - p, p] for one output, p for each of k."""
    x = input_array(runner, step)
    loss, k = step.meta["loss"], step.meta["k"]
    pairs = loss == "bce" and k == 1  # [1 - p, p]
    k = 2 if pairs else k
    if not isinstance(out, np.ndarray) or x is None or out.shape != (x.shape[0], k):
        return f"probabilities of shape {getattr(out, 'shape', None)}"
    if finite:
        if not np.isfinite(out).all() or (out < 0).any() or (out > 1).any():
            return "probabilities outside [0, 1] or not finite"
        sums = out.sum(axis=1) if loss == "softmax" or pairs else 1.0
        if out.size and not np.allclose(sums, 1.0, atol=1e-3):
            return "probabilities that do not sum to 1"
    return canonical_rerun(runner, step, out)


def check_score(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    if not isinstance(out, float):
        return f"a {type(out).__name__}, not a float"
    if finite and math.isnan(out):
        return "score is NaN"
    if step.meta["loss"] in REGRESSION:
        if out > 1.0:
            return "R² above 1"
    elif not 0.0 <= out <= 1.0:
        return "accuracy outside [0, 1]"
    return canonical_rerun(runner, step, out)


def check_loss(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], float)):
        return f"not a (float, gradients) pair: {type(out).__name__}"
    value, grads = out
    if finite and math.isnan(value):
        return "loss is NaN from finite input and weights"
    shapes = step.meta.get("grad_shapes")
    if shapes is not None:
        got = [(np.shape(w), np.shape(b)) for w, b in grads]
        if got != shapes:
            return f"gradient shapes {got}, expected {shapes}"
    arrays_ = [a for pair in grads for a in pair] if shapes is not None else [grads]
    if finite and any(has_nan(a) for a in arrays_):
        return "NaN gradient from finite input and weights"
    return checked_against_references(runner, step, out)


def check_penalty(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """½λ‖W‖² as numpy computes it in float64, for the λ that loss(weight_decay=λ) accepts:
    finite and >= 0 (anything else must be refused as loss refuses it)."""
    try:
        lam = float(evaluate(step.meta["wd"]))
    except (TypeError, OverflowError):
        lam = math.nan
    if not isinstance(out, float):
        return f"a {type(out).__name__}, not a float"
    if not (math.isfinite(lam) and lam >= 0):
        return f"returned {out!r} for weight_decay={step.meta['wd']}, which loss() refuses"
    # Weight decay is on the Linear / Maxout weights, not on a BatchNorm's gamma.
    layers = runner.ns[step.needs[0]].param_layers
    weights = [
        np.asarray(lay.weight, np.float64)
        for lay in layers
        if not isinstance(lay, mlpfast.BatchNorm)
    ]
    with np.errstate(all="ignore"):
        ref = 0.5 * lam * sum(float((w * w).sum()) for w in weights) if lam else 0.0
    if not (out == ref or math.isclose(out, ref, rel_tol=1e-5)):
        return f"L2 penalty {out!r}, numpy's ½λ‖W‖² in float64 is {ref!r}"
    return None


def _float32_unrepresentable(runner: Runner, step: Step) -> str | None:
    if step.meta.get("dtype") != "float32":
        return None
    for name, source in step.meta.get("settings", {}).items():
        if name not in FLOAT32_SETTINGS:
            continue
        optimizer = step.meta["settings"].get("optimizer")
        if name == "eps" and optimizer not in ("'adam'", "'adamw'", "'rmsprop'"):
            continue
        value = evaluate(source)
        if isinstance(value, (float, int)) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                continue
            if not math.isfinite(value) or value == 0:
                continue
            with np.errstate(all="ignore"):
                as32 = float(np.float32(value))
            lost = math.isinf(as32) or (as32 == 0 and name != "weight_decay")
            if lost:
                return f"a float32 model accepted {name}={source}, which float32 holds as {as32}"
    return None


def check_fit(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    model = runner.ns[step.watch[0]]
    if not isinstance(out, dict) or not isinstance(out.get("loss"), list):
        return f"fit returned {type(out).__name__}, not a history dict"
    # Validation data too large for the dtype may overflow its loss (not the training).
    source = step.meta.get("settings", {}).get("validation_data", "")
    validation = re.findall(r"\b[xy]\d+\b", source)
    val_finite = moderate(runner, tuple(validation), [model])
    for key, values in out.items():
        if key.startswith("val_") and not val_finite:
            continue
        if not all(isinstance(v, float) and math.isfinite(v) for v in values):
            return f"fit returned normally with a non-finite {key!r} curve (divergence unreported)"
    if not all_finite(model):
        return "fit returned normally with non-finite weights (divergence not reported)"
    epochs = evaluate(step.meta.get("settings", {}).get("epochs", "10"))
    if isinstance(epochs, int) and len(out["loss"]) > epochs:
        return f"{len(out['loss'])} epochs for epochs={epochs}"
    return _float32_unrepresentable(runner, step)


def check_built(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """A constructor's result: the sizes asked for, finite weights of matching shapes."""
    sizes = step.meta.get("sizes")
    try:
        layers = out.param_layers if isinstance(out, mlpfast.MLP) else [out]
        shapes = [(lay.weight.shape, lay.bias.shape) for lay in layers]
        ok = all_finite(out)
    except BaseException as exc:
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return f"the object was built but reading its weights raised {type(exc).__name__}: {exc}"
    if sizes is not None:
        sizes = [int(s) for s in sizes]
        if list(out.layer_sizes) != sizes:
            return f"layer_sizes {out.layer_sizes}, asked for {sizes}"
        expected = []
        for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
            maxout = out.activation == "maxout" and i < len(sizes) - 2
            expected.append(((2, a, b), (2, b)) if maxout else ((a, b), (b,)))
        if shapes != expected:
            return f"weight shapes {shapes}, expected {expected}"
    if not ok:
        return "a new object with non-finite weights"
    return None


def check_threads(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    wanted = evaluate(step.meta["n"])
    if mlpfast.get_num_threads() != wanted:
        return f"set_num_threads({step.meta['n']}) returned; {mlpfast.get_num_threads()} now"
    return None


def check_grads(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    layer = runner.ns[step.needs[0]]
    if not isinstance(out, tuple) or len(out) != 2:
        return "not a pair"
    if out[0].shape != layer.weight.shape or out[1].shape != layer.bias.shape:
        return f"gradient shapes {out[0].shape}, {out[1].shape} for weights {layer.weight.shape}"
    if finite and (has_nan(out[0]) or has_nan(out[1])):
        return "NaN parameter gradient"
    return None


def check_assigned(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """After ``layer.weight = value``: the layer holds exactly value in its dtype."""
    layer = runner.ns[step.needs[0]]
    attr = step.meta["attr"]
    value = runner.ns[step.meta["x"]]
    with np.errstate(all="ignore"):
        wanted = np.asarray(value).astype(layer.dtype)
    got = getattr(layer, attr)
    if not same_bits(np.ascontiguousarray(got), np.ascontiguousarray(wanted.reshape(got.shape))):
        return f"{attr} holds {got!r} after assigning {wanted!r}"
    return None


def check_gradcheck(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    if not isinstance(out, dict) or not all(isinstance(v, float) for v in out.values()):
        return f"check_layer returned {short(out)}"
    return None


def check_same(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """A round trip (file, pickle, copy): the same kind of object, bit for bit."""
    original = runner.ns[step.meta["of"]]
    if type(out) is not type(original):
        return f"a {type(out).__name__} came back for a {type(original).__name__}"
    if not same_bits(params_of(out), params_of(original)):
        return "the weights differ after the round trip"
    for attr in ("layer_sizes", "activation", "loss_name", "dtype", "alpha", "pieces",
                 "classes_", "n_features_in_", "loss_curve_", "n_iter_"):  # fmt: skip
        if not hasattr(original, attr):
            continue
        a, b = getattr(original, attr), getattr(out, attr, "<missing>")
        if attr == "dtype" and not isinstance(original, mlpfast.MLP):
            a, b = outcome(np.dtype, a), outcome(np.dtype, b)  # np.float64 comes back by name
        if not same_bits(a, b):
            return f"{attr} differs: {a!r} before the round trip, {b!r} after it"
    if hasattr(original, "predict"):  # the copy predicts as the original, or fails as it
        n_in = original.layer_sizes[0] if isinstance(original, mlpfast.MLP) else 1
        x = np.random.default_rng(0).standard_normal((3, getattr(original, "n_features_in_", n_in)))
        a, b = outcome(original.predict, x), outcome(out.predict, x)
        if not same_bits(a, b):
            return f"predict on {x!r}: {a!r} before the round trip, {b!r} after it"
    return None


def outcome(fn: Callable, *args: Any) -> Any:
    """What ``fn(*args)`` returns, or the type of what it raises."""
    try:
        with quiet(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args)
    except Exception as exc:
        return f"raised {type(exc).__name__}"


def check_estimator_fit(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    est = runner.ns[step.needs[0]]
    if out is not est:
        return "fit did not return the estimator"
    if not all_finite(est):
        return "fit returned normally with non-finite weights"
    for name in ("loss_", "best_loss_", "best_validation_score_"):
        v = getattr(est, name, None)
        if isinstance(v, float) and math.isnan(v):
            return f"{name} is NaN"
    for name in ("loss_curve_", "validation_scores_", "validation_loss_curve_"):
        v = getattr(est, name, None) or []
        if not all(math.isfinite(u) for u in v):
            return f"{name} is not finite: {v}"
    return None


def check_estimator_predict(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """A row per sample (strings of numbers are samples too, as in scikit-learn): labels from
    classes_, 0/1 flags for multilabel targets, non-NaN values for a regressor."""
    est = runner.ns[step.needs[0]]
    rows = np.shape(runner.ns[step.meta["x"]])[:1]
    if not isinstance(out, np.ndarray) or out.shape[:1] != rows:
        return f"{type(out).__name__} of shape {getattr(out, 'shape', None)} for {rows} rows"
    if getattr(est, "_kind", "") == "multilabel":
        if out.shape[1:] != est.classes_.shape or not np.isin(out, [0, 1]).all():
            return f"multilabel flags {out!r} for classes_ {est.classes_!r}"
    elif hasattr(est, "classes_"):
        if not np.isin(out, est.classes_).all():
            return f"labels outside classes_ {est.classes_!r}"
    elif finite and has_nan(out):
        return "NaN predictions"
    return None


def check_estimator_proba(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    if finite and (not np.isfinite(out).all() or (out < 0).any() or (out > 1).any()):
        return "probabilities outside [0, 1] or not finite"
    return None


def check_estimator_score(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    if finite and (not isinstance(out, float) or math.isnan(out)):
        return f"score {out!r}"
    return None


def check_loaded(runner: Runner, step: Step, out: Any, finite: bool) -> str | None:
    """A model read from damaged bytes: it must at least work."""
    if hasattr(out, "predict"):
        n = out.layer_sizes[0] if isinstance(out, mlpfast.MLP) else out.n_features_in_
        try:
            with quiet(), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out.predict(np.zeros((2, n)))
        except Exception as exc:
            return f"loaded, but predict raised {exc!r}"
    return None


CHECKS: dict[str, Callable[[Runner, Step, Any, bool], str | None]] = {
    "forward": check_forward,
    "backward": check_backward,
    "predict": check_predict,
    "proba": check_proba,
    "score": check_score,
    "loss": check_loss,
    "penalty": check_penalty,
    "fit": check_fit,
    "built": check_built,
    "threads": check_threads,
    "grads": check_grads,
    "assigned": check_assigned,
    "gradcheck": check_gradcheck,
    "same": check_same,
    "est_fit": check_estimator_fit,
    "est_predict": check_estimator_predict,
    "est_proba": check_estimator_proba,
    "est_score": check_estimator_score,
    "loaded": check_loaded,
}


# numpy's values, for results that are cheap to recompute (moderate inputs only).
def _moderate(*arrays_: np.ndarray) -> bool:
    return all(a is not None and np.isfinite(a).all() and np.abs(a).max(initial=0) < 1e6
               for a in arrays_)  # fmt: skip


def _close(out: np.ndarray, ref: np.ndarray, dtype: str) -> bool:
    tol = 1e-4 if np.dtype(dtype) == np.float32 else 1e-10
    scale = max(1.0, float(np.abs(ref).max(initial=0)))
    return bool(np.allclose(np.asarray(out, np.float64), ref, rtol=tol, atol=tol * scale))


def ref_linear(runner: Runner, step: Step, out: np.ndarray) -> str | None:
    layer = runner.ns[step.needs[0]]
    x = input_array(runner, step)
    with np.errstate(all="ignore"):
        xd = np.asarray(np.asarray(runner.ns[step.meta["x"]]).astype(layer.dtype), np.float64)
    w, b = np.asarray(layer.weight, np.float64), np.asarray(layer.bias, np.float64)
    if not _moderate(xd, w, b) or x is None:
        return None
    ref = xd @ w + b if w.ndim == 2 else np.max(np.einsum("nd,pdk->pnk", xd, w) + b[:, None], 0)
    if not _close(out, ref, layer.dtype):
        return f"differs from numpy's x @ weight + bias: {ref!r}"
    return None


ACTIVATION_REFS = {
    "Identity": lambda x, a: x,
    "Sigmoid": lambda x, a: 1 / (1 + np.exp(-x)),
    "Tanh": np.tanh,
    "ReLU": lambda x, a: np.maximum(x, 0),
    "LeakyReLU": lambda x, a: np.where(x > 0, x, a * x),
    "ELU": lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0))),
}


def ref_activation(runner: Runner, step: Step, out: np.ndarray) -> str | None:
    gate = runner.ns[step.needs[0]]
    x = input_array(runner, step)
    if not _moderate(x) or out.dtype.kind != "f":
        return None
    with np.errstate(all="ignore"):
        xd = np.asarray(np.asarray(runner.ns[step.meta["x"]]).astype(out.dtype), np.float64)
    fn = ACTIVATION_REFS[type(gate).__name__]
    ref = fn(xd, getattr(gate, "alpha", 0.0)) if type(gate).__name__ != "Tanh" else fn(xd)
    if not _close(out, ref, str(out.dtype)):
        return f"differs from numpy's {type(gate).__name__}: {ref!r}"
    return None


def ref_softmax(runner: Runner, step: Step, out: tuple) -> str | None:
    s = input_array(runner, step)
    y = np.asarray(runner.ns[step.meta["y"]])
    if not _moderate(s) or s.ndim != 2 or y.dtype.kind not in "iu" or y.shape != (len(s),):
        return None
    with np.errstate(all="ignore"):
        dtype = str(np.asarray(out[1]).dtype)
        sd = np.asarray(np.asarray(runner.ns[step.meta["x"]]).astype(dtype), np.float64)
    z = sd - sd.max(axis=1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    ref = -logp[np.arange(len(sd)), y].mean()
    if not _close(np.array(out[0]), np.array(ref), dtype):
        return f"softmax loss {out[0]!r}, numpy's {ref!r}"
    return None


REFERENCES = {"linear": ref_linear, "activation": ref_activation, "softmax": ref_softmax}


# --------------------------------------------------------------------------- properties
def canonical_x(name: str, dtype: str) -> str:
    return f"np.ascontiguousarray({name}, dtype={dtype!r})"


@st.composite
def plan_construct(draw) -> Plan:
    """Constructors of MLP, Linear, Maxout, the activations; set_num_threads."""
    plan, names = Plan(), Names()
    size_odd = ["0", "-1", "-2**63", "10**5", "10**6", "2**31", "2**32", "2**40", "2**62",
                "2**63 - 1", "2**63", "2**64", "10**20", "1.0", "2.5", "'3'", "None", "True",
                "np.int64(3)", "np.uint64(2**64 - 1)", "np.float64(3.0)"]  # fmt: skip
    seeds = (["0", "1", "None", "12345"], ["-1", "2**64", "2**63", "-2**63", "2**64 - 1",
                                           "1.5", "'1'", "True", "np.uint64(2**64 - 1)",
                                           "np.int64(-5)", "10**30"])  # fmt: skip
    dtypes = (["'float32'", "'float64'", "np.float32", "np.dtype('float64')", "'f8'", "'<f4'"],
              ["'>f8'", "'float16'", "'int32'", "None", "'f4,('", "'double-ish'", "np.float16",
               "complex", "3", "'float64\\0'", "np.dtype('>f4')"])  # fmt: skip

    def size(draw) -> str:
        return choose(draw, [str(i) for i in range(1, 7)], size_odd, 15)

    def seed_kw(draw) -> list[str]:
        return [f"seed={choose(draw, *seeds, 30)}"] if odd(draw, 50) else []

    def dtype_kw(draw) -> list[str]:
        return [f"dtype={choose(draw, *dtypes, 30)}"] if odd(draw, 50) else []

    for _ in range(draw(st.integers(1, 4))):
        what = draw(st.sampled_from(["MLP", "MLP", "Linear", "Maxout", "activation", "threads"]))
        if what == "MLP":
            sizes = [size(draw) for _ in range(draw(st.integers(1, 4)))]
            container = choose(draw, ["[{}]"], ["({},)", "np.array([{}])", "iter([{}])", "str"])
            kw = seed_kw(draw) + dtype_kw(draw)
            if odd(draw, 50):
                kw.append("activation=" + choose(draw, [repr(a) for a in ACTIVATIONS],
                                                 ["''", "'RELU'", "'relu '", "'softmax'", "None",
                                                  "1", "b'relu'", "['relu']"], 30))  # fmt: skip
            if odd(draw, 50):
                kw.append("loss=" + choose(draw, [repr(v) for v in LOSSES],
                                           ["''", "'hinge'", "'log_loss'", "'mse '", "None",
                                            "2"], 30))  # fmt: skip
            listed = ", ".join(sizes)  # the sizes as a string literal, or inside a container
            listed = repr(listed) if container == "str" else container.format(listed)
            code = f"mlpfast.MLP({', '.join([listed, *kw])})"
            name = names("m")
            values = [evaluate(s) for s in sizes]
            plain = container == "[{}]" and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values
            )
            meta = {"sizes": values} if plain else {}
            plan.append(Step(f"{name} = {code}", check="built", meta=meta))
            if plain and all(0 < v <= 6 for v in values) and len(values) >= 2:
                # A small model that was accepted must also work.
                x = array_step(plan, names, draw(arrays((2, int(values[0])), wrong=0)))
                plan.append(
                    Step(f"{name}.forward({x})", needs=(name, x), watch=(name,), pure=True,
                         check="forward", meta={"x": x, "width": int(values[-1])})
                )  # fmt: skip
        elif what in ("Linear", "Maxout"):
            args = [size(draw), size(draw)]
            if what == "Maxout" and odd(draw, 60):
                args.append(choose(draw, ["1", "2", "3"], ["0", "-1", "2**32", "2**63", "2**64",
                                                           "1.5", "None"], 30))  # fmt: skip
            code = f"mlpfast.{what}({', '.join([*args, *seed_kw(draw), *dtype_kw(draw)])})"
            plan.append(Step(f"{names('g')} = {code}", check="built"))
        elif what == "activation":
            cls = draw(st.sampled_from(["Identity", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
                                        "ELU"]))  # fmt: skip
            arg = ""
            if cls in ("LeakyReLU", "ELU") and odd(draw, 70):
                arg = choose(draw, ["0.01", "0.3", "1.0", "0.0"],
                             ["-1.0", "nan", "inf", "1e39", "1e300", "-1e300", "5e-324", "'0.1'",
                              "None", "10**400", "True", "np.float32(0.2)"], 40)  # fmt: skip
            name = names("a")
            plan.append(Step(f"{name} = mlpfast.{cls}({arg})", check=None))
            x = array_step(plan, names, draw(arrays((2, 3), wrong=0)))
            plan.append(
                Step(f"{name}.forward({x})", needs=(name, x), check="forward",
                     meta={"x": x, "width": 3, "same_shape": True, "reference": "activation"})
            )  # fmt: skip
        else:
            n = choose(draw, ["1", "2", "4"], ["0", "-1", "1025", "10**6", "2**63", "2**64",
                                               "2.0", "'2'", "None", "True"], 40)  # fmt: skip
            plan.append(
                Step(f"mlpfast.set_num_threads({n})", watch=("get_num_threads",),
                     check="threads", meta={"n": n})
            )  # fmt: skip
            plan.append(Step("mlpfast.get_num_threads()"))
    return plan


def model_plan(draw, plan: Plan, names: Names, spec: ModelSpec) -> str:
    """Adds the construction of ``spec``'s model; returns its name."""
    name = names("m")
    plan.append(Step(f"{name} = {spec.code()}", check="built"))
    return name


def predict_steps(draw, plan, names, spec, m, n, wrong=15) -> None:
    """One of forward, predict, predict_proba, decision_function, score, loss, l2_penalty."""
    what = draw(st.sampled_from(["forward", "predict", "predict_proba", "decision_function",
                                 "score", "loss", "l2_penalty"]))  # fmt: skip
    if what == "l2_penalty":
        wd = choose(draw, ["0.0", "0.5", "1e-4"], ["-1.0", "nan", "inf", "1e300", "10**400",
                                                   "None"])  # fmt: skip
        plan.append(Step(f"{m}.l2_penalty({wd})", needs=(m,), watch=(m,), pure=True,
                         check="penalty", meta={"wd": wd}))  # fmt: skip
        return
    x = array_step(plan, names, draw(arrays((n, spec.d), wrong=wrong)))
    canon = canonical_x(x, spec.dtype)
    meta = {"x": x, "width": spec.k, "dtype": spec.dtype, "loss": spec.loss, "k": spec.k}
    common = {"needs": (m, x), "watch": (m,), "pure": True}
    if what in ("forward", "predict", "predict_proba", "decision_function"):
        check = {"forward": "forward", "decision_function": "forward", "predict": "predict",
                 "predict_proba": "proba"}[what]  # fmt: skip
        meta["canonical"] = f"{m}.{what}({canon})"
        plan.append(Step(f"{m}.{what}({x})", check=check, meta=meta, **common))
    elif what in ("score", "loss"):
        y = array_step(plan, names, targets(draw, spec, n), "y")
        common["needs"] = (m, x, y)
        meta["unsigned"] = "'<u" in plan[-1].code or "'|u" in plan[-1].code
        extra = ""
        if what == "loss" and odd(draw, 40):
            extra = ", weight_decay=" + choose(
                draw, ["0.0", "0.1"], ["-1.0", "nan", "inf", "1e39", "10**400", "'0'"]
            )
        meta["canonical"] = f"{m}.{what}({canon}, {y}{extra})"
        shapes = []
        for i, (a, b) in enumerate(zip(spec.sizes, spec.sizes[1:])):
            hidden = i < len(spec.sizes) - 2
            maxout = spec.activation == "maxout" and hidden
            shapes.append(((2, a, b), (2, b)) if maxout else ((a, b), (b,)))
            if spec.batch_norm and hidden:
                shapes.append(((b,), (b,)))  # the BatchNorm's gamma and beta
        meta["grad_shapes"] = shapes
        plan.append(Step(f"{m}.{what}({x}, {y}{extra})", check=what, meta=meta, **common))


@st.composite
def plan_model(draw) -> Plan:
    """MLP's methods on inputs of random shapes, dtypes, layouts and values."""
    plan, names = Plan(), Names()
    spec = draw(model_specs())
    m = model_plan(draw, plan, names, spec)
    if odd(draw, 30):
        # New weights for one layer, of any dtype and layout (refused if not finite).
        i = draw(st.integers(0, len(spec.sizes) - 2))
        a, b = spec.sizes[i], spec.sizes[i + 1]
        shape = (2, a, b) if spec.activation == "maxout" and i < len(spec.sizes) - 2 else (a, b)
        w = array_step(plan, names, draw(arrays(shape, wrong=10)), "w")
        plan.append(
            Step(f"{m}.param_layers[{i}].weight = {w}", needs=(m, w), watch=(m,),
                 check=None)
        )  # fmt: skip
    last_n = None
    for _ in range(draw(st.integers(1, 5))):
        n = rows(draw)
        what = draw(st.sampled_from(["predict"] * 4 + ["backward", "fit", "view", "mutate",
                                                       "pickle", "gate"]))  # fmt: skip
        if what == "predict":
            predict_steps(draw, plan, names, spec, m, n)
        elif what == "backward":
            # forward then backward; sometimes the input changes in between.
            x = array_step(plan, names, draw(arrays((n, spec.d), wrong=5)))
            plan.append(Step(f"{m}.forward({x})", needs=(m, x), watch=(m,), pure=True))
            last_n = n
            if odd(draw, 30):
                plan.append(Step(f"{x}[...] = -{x}", needs=(x,), api=False))
            dn = last_n if not odd(draw, 15) else draw(st.integers(0, 9))
            d = array_step(plan, names, draw(arrays((dn, spec.k), wrong=15)), "d")
            plan.append(
                Step(f"{m}.backward({d})", needs=(m, d), watch=(m,), pure=True,
                     check="backward", meta={"x": d, "width": spec.d})
            )  # fmt: skip
        elif what == "fit":
            x = array_step(plan, names, draw(arrays((n, spec.d), wrong=10)))
            y = array_step(plan, names, targets(draw, spec, n, wrong=10), "y")
            kw = fit_keywords(draw, percent=15, unusual=10)
            kw.setdefault("epochs", "2")
            settings_ = dict(kw)
            plan.append(
                Step(f"{m}.fit({x}, {y}, {keywords_source(kw)})", needs=(m, x, y), watch=(m,),
                     check="fit", meta={"settings": settings_, "dtype": spec.dtype,
                                        "trains": True,
                                        "unsigned": "'<u" in plan[-1].code})
            )  # fmt: skip
        elif what == "view":
            # Writing through a live view bypasses every check: any finite value must work.
            value = draw(st.sampled_from(["0.0", "-0.0", "1e30", "3.0e38", "5e-324", "-1e-45"]))
            plan.append(
                Step(f"{m}.param_layers[-1].weight.flat[0] = {value}", needs=(m,), api=False)
            )
        elif what == "mutate" and names.count:
            plan.append(Step(f"x{names.count}[...] = 0", needs=(f"x{names.count}",), api=False))
        elif what == "pickle":
            plan.append(
                Step(f"{names('m')} = pickle.loads(pickle.dumps({m}))", needs=(m,), watch=(m,),
                     pure=True, check="same", meta={"of": m})
            )  # fmt: skip
        elif what == "gate":
            # The model's own layers driven as gates.
            count = len(spec.sizes) - 1
            if spec.activation == "maxout":  # Maxout layers have no activation gates
                j = draw(st.integers(0, count - 1))
                width = spec.sizes[j]
            else:
                j = draw(st.integers(0, 2 * count - 2))
                width = spec.sizes[(j + 1) // 2]
            x = array_step(plan, names, draw(arrays((n, width), wrong=10)))
            plan.append(Step(f"{m}.layers[{j}].forward({x})", needs=(m, x), watch=(m,),
                             pure=True))  # fmt: skip
    return plan


@st.composite
def plan_fit(draw) -> Plan:
    """MLP.fit with random settings, validation data and callbacks, and a second fit."""
    plan, names = Plan(), Names()
    spec = draw(model_specs())
    m = model_plan(draw, plan, names, spec)
    for _ in range(draw(st.integers(1, 2))):
        n = rows(draw)
        # Half the fits get valid data and settings: they train, and their results are checked.
        wrong = draw(st.sampled_from([0, 0, 5, 10]))
        x = array_step(plan, names, draw(arrays((n, spec.d), wrong=wrong)))
        y = array_step(plan, names, targets(draw, spec, n, wrong=wrong), "y")
        unsigned = "'<u" in plan[-1].code
        kw = fit_keywords(draw, unusual=2 * wrong)
        extra = []
        if odd(draw, 25):
            nv = draw(st.integers(1, 5))
            xv = array_step(plan, names, draw(arrays((nv, spec.d), wrong=wrong)))
            yv = array_step(plan, names, targets(draw, spec, nv, wrong=wrong), "y")
            shape = choose(draw, ["({}, {})"], ["({},)", "[{}, {}]", "({}, {}, {})", "{}",
                                                "({}, None)"], 2 * wrong)  # fmt: skip
            kw["validation_data"] = shape.format(xv, yv, xv)
        if odd(draw, 15):
            # Row weights: reals of any sign and value, of the right length or not (refusals
            # are documented ValueErrors, before any work).
            length = n if not odd(draw, 2 * wrong) else draw(st.integers(0, n + 1))
            kw["sample_weight"] = array_step(plan, names, draw(arrays((length,), wrong=wrong)), "w")
        if wrong and odd(draw, 10):
            extra.append(draw(st.sampled_from(UNKNOWN_KEYWORDS)))
        plan.append(
            Step(f"{m}.fit({x}, {y}, {keywords_source(kw, extra)})", needs=(m, x, y),
                 watch=(m,), check="fit",
                 meta={"settings": kw, "dtype": spec.dtype, "trains": True,
                       "unsigned": unsigned})
        )  # fmt: skip
        predict_steps(draw, plan, names, spec, m, rows(draw), wrong=0)
    if odd(draw, 30):
        plan.append(Step(f"{m}.history", needs=(m,), watch=(m,), pure=True))
        plan.append(Step(f"{m}.samples_seen, {m}.learning_rate, {m}.stopped_early",
                         needs=(m,), watch=(m,), pure=True))  # fmt: skip
    return plan


@st.composite
def plan_gates(draw) -> Plan:
    """Linear, Maxout and the activations as gates: forward/backward in any order, the
    input changed or resized in between, weights assigned, gradcheck, pickle."""
    plan, names = Plan(), Names()
    dtype = draw(st.sampled_from(["float32", "float64"]))
    d, k, pieces = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    kind = draw(st.sampled_from(["Linear", "Maxout", "Identity", "Sigmoid", "Tanh", "ReLU",
                                 "LeakyReLU", "ELU", "model layer"]))  # fmt: skip
    g = names("g")
    if kind == "Linear":
        plan.append(Step(f"{g} = mlpfast.Linear({d}, {k}, dtype={dtype!r}, seed=0)"))
    elif kind == "Maxout":
        plan.append(Step(f"{g} = mlpfast.Maxout({d}, {k}, {pieces}, dtype={dtype!r}, seed=0)"))
    elif kind == "model layer":
        spec = draw(model_specs())
        m = model_plan(draw, plan, names, spec)
        plan.append(Step(f"{g} = {m}.layers[0]", needs=(m,)))
        d, k, dtype, pieces = spec.d, spec.sizes[1], spec.dtype, mlpfast._core.MAXOUT_PIECES
        kind = "Maxout" if spec.activation == "maxout" and len(spec.sizes) > 2 else "Linear"
    else:
        alpha = draw(st.sampled_from(["", "0.2", "2.0"])) if kind in ("LeakyReLU", "ELU") else ""
        plan.append(Step(f"{g} = mlpfast.{kind}({alpha})"))
        k = d
    params = kind in ("Linear", "Maxout")
    shapes = {"weight": (pieces, d, k) if kind == "Maxout" else (d, k),
              "bias": (pieces, k) if kind == "Maxout" else (k,)}  # fmt: skip
    watch = (g,) if params else ()
    last_n = last_x = None
    for i in range(draw(st.integers(1, 6))):
        what = draw(st.sampled_from(["forward", "forward", "backward", "backward", "backward",
                                     "mutate", "resize", "assign", "assign", "grads",
                                     "gradcheck", "pickle", "view"]))  # fmt: skip
        if i == 0 and not odd(draw, 10):
            what = "forward"  # mostly: backward without a forward is one refusal among many
        if what == "forward":
            n = rows(draw)
            x = array_step(plan, names, draw(arrays((n, d), wrong=15)))
            meta = {"x": x, "width": k, "same_shape": not params}
            if params:
                meta.update(dtype=dtype, reference="linear",
                            canonical=f"{g}.forward({canonical_x(x, dtype)})")  # fmt: skip
            else:
                meta.update(reference="activation")
            plan.append(Step(f"{g}.forward({x})", needs=(g, x), watch=watch, pure=True,
                             check="forward", meta=meta))  # fmt: skip
            last_n, last_x = n, x
        elif what == "backward":
            n = last_n if last_n is not None and not odd(draw, 15) else draw(st.integers(0, 5))
            dout = array_step(plan, names, draw(arrays((n, k), wrong=15)), "d")
            meta = {"x": dout, "width": d} if params else {"x": dout}
            plan.append(Step(f"{g}.backward({dout})", needs=(g, dout), watch=watch, pure=True,
                             check="backward", meta=meta))  # fmt: skip
        elif what == "mutate" and last_x:
            # forward keeps its input for backward: changing it afterwards must be harmless.
            value = draw(st.sampled_from(["0", "1e30", "nan", "-1"]))
            plan.append(Step(f"{last_x}[...] = {value}", needs=(last_x,), api=False))
        elif what == "resize" and last_x:
            # numpy frees the old buffer: backward must not read it.
            shape = draw(st.sampled_from([(1, d), (9, d), (3, d + 1), (0, d)]))
            plan.append(Step(f"{last_x}.resize({shape!r}, refcheck=False)", needs=(last_x,),
                             api=False))  # fmt: skip
        elif what == "assign" and params:
            attr = draw(st.sampled_from(["weight", "bias"]))
            shape = shapes[attr]
            if len(shape) == 3:  # arrays() perturbs 1-D and 2-D shapes; 3-D ones stay as drawn
                rng = np.random.default_rng(draw(st.integers(0, 99)))
                w = array_step(plan, names, literal(rng.standard_normal(shape)), "w")
            else:
                w = array_step(plan, names, draw(arrays(shape, wrong=15)), "w")
            plan.append(Step(f"{g}.{attr} = {w}", needs=(g, w), watch=(g,), check="assigned",
                             meta={"attr": attr, "x": w}))  # fmt: skip
        elif what == "grads" and params:
            plan.append(Step(f"({g}.grad_weight, {g}.grad_bias)", needs=(g,), watch=(g,),
                             pure=True, check="grads"))  # fmt: skip
        elif what == "gradcheck":
            x = array_step(plan, names, draw(arrays((draw(st.integers(1, 3)), d), wrong=10)))
            plan.append(Step(f"mlpfast.gradcheck.check_layer({g}, {x})", needs=(g, x),
                             check="gradcheck"))  # fmt: skip
        elif what == "pickle":
            plan.append(Step(f"{names('g')} = pickle.loads(pickle.dumps({g}))", needs=(g,),
                             watch=watch, pure=True, check="same", meta={"of": g}))  # fmt: skip
        elif what == "view" and params:
            value = draw(st.sampled_from(["-0.0", "1e30", "5e-324"]))
            plan.append(Step(f"{g}.weight.flat[0] = {value}", needs=(g,), api=False))
    return plan


@st.composite
def plan_losses(draw) -> Plan:
    """softmax_loss, svm_loss, mse_loss and bce_loss on random scores and targets."""
    plan, names = Plan(), Names()
    for _ in range(draw(st.integers(1, 3))):
        n, k = rows(draw), draw(st.integers(1, 5))
        fn = draw(st.sampled_from(["softmax_loss", "svm_loss", "mse_loss", "bce_loss"]))
        shape = (n,) if fn == "bce_loss" and odd(draw, 50) else (n, k)
        s = array_step(plan, names, draw(arrays(shape)), "s")
        if fn in ("softmax_loss", "svm_loss"):
            y = array_step(plan, names, draw(arrays((n,), "labels", k)), "y")
        elif fn == "bce_loss":
            y = array_step(plan, names, draw(arrays(shape, "binary")), "y")
        else:
            y = array_step(plan, names, draw(arrays(shape)), "y")
        extra = ""
        if fn == "svm_loss" and odd(draw, 50):
            extra = ", margin=" + choose(draw, ["1.0", "0.5", "0.0"],
                                         ["-1.0", "nan", "inf", "1e39", "1e300", "'1'", "None",
                                          "10**400"], 40)  # fmt: skip
        meta = {"x": s, "y": y, "unsigned": "'<u" in plan[-1].code}
        canonical = f"mlpfast.{fn}(np.ascontiguousarray({s}, dtype=np.asarray({s}).dtype "
        canonical += f"if np.asarray({s}).dtype in (np.float32, np.float64) else np.float64), {y}"
        meta["canonical"] = canonical + f"{extra})"
        if fn == "softmax_loss":
            meta["reference"] = "softmax"
        plan.append(Step(f"mlpfast.{fn}({s}, {y}{extra})", needs=(s, y), check="loss",
                         meta=meta))  # fmt: skip
    return plan


EST_PARAMS: dict[str, tuple[list[str], list[str]]] = {
    "hidden_layer_sizes": (["(3,)", "(2, 3)", "4"], ["()", "(0,)", "(-1,)", "(10**6, 10**6)",
                                                     "(2**62,)", "(2**63,)", "(1.5,)", "'3'",
                                                     "None", "np.array([3])", "[2**31, 2]"]),
    "activation": (["'relu'", "'identity'", "'logistic'", "'tanh'", "'leaky_relu'", "'elu'",
                    "'maxout'"], ["'sigmoid'", "''", "None", "1"]),
    "solver": (["'adam'", "'sgd'", "'adamw'", "'rmsprop'", "'lbfgs'"],
               ["'SGD'", "None", "'newton'"]),
    "alpha": (["1e-4", "0.0", "1.0"], ["-1.0", "nan", "inf", "1e39", "1e300", "'0.1'", "None",
                                       "True", "10**400"]),
    "batch_size": (["'auto'", "1", "2", "5"], ["10**6", "0", "-1", "2**63", "2**64", "1.5",
                                               "'x'", "None"]),
    "learning_rate": (["'constant'", "'invscaling'", "'adaptive'"], ["'optimal'", "None", "1"]),
    "learning_rate_init": (["1e-3", "0.1"], ["10.0", "1e39", "0.0", "-1.0", "nan", "inf",
                                             "1e-46", "5e-324", "10**400", "'0.1'", "1e300"]),
    "power_t": (["0.5"], ["0.0", "-1.0", "1e300", "nan", "inf"]),
    "max_iter": (["1", "2", "3"], ["0", "-1", "2**31", "2**63", "2**80", "1.5", "'5'", "None"]),
    "shuffle": (["True", "False"], ["None", "1", "'yes'"]),
    "random_state": (["0", "None", "1"], ["-1", "2**32", "2**63", "1.5", "'0'",
                                          "np.random.RandomState(0)"]),
    "tol": (["1e-4", "0.0"], ["-1.0", "nan", "inf", "1e300"]),
    "verbose": (["False"], ["True", "2"]),
    "warm_start": (["False", "True"], ["None", "1"]),
    "momentum": (["0.9", "0.0"], ["0.99999", "1.0", "1.5", "-0.1", "nan"]),
    "nesterovs_momentum": (["True", "False"], ["None"]),
    "early_stopping": (["False", "True"], ["None"]),
    "validation_fraction": (["0.1", "0.5"], ["0.0", "0.99", "1.0", "-0.1", "nan"]),
    "beta_1": (["0.9"], ["0.0", "1.0", "-0.1", "nan", "1 - 1e-17"]),
    "beta_2": (["0.999"], ["0.0", "1.0", "-0.1", "nan", "1 - 1e-17"]),
    "epsilon": (["1e-8"], ["0.0", "1e-46", "5e-324", "-1.0", "nan", "1e39"]),
    "n_iter_no_change": (["10", "1", "2"], ["0", "-1", "np.inf", "2**63", "1.5", "None"]),
    "max_fun": (["20", "15000"], ["1", "0", "-1", "2**63"]),
    "dropout": (["0.0", "0.3"], ["1.0", "-0.1", "nan", "'a'", "None"]),
    "batch_norm": (["False", "True"], ["None", "1", "'yes'"]),
    "dtype": (["'float32'", "'float64'", "np.float64", "'f8'"], ["'>f8'", "'float16'", "'f4,('",
                                                                 "None", "'int32'", "1"]),
}  # fmt: skip


def est_params(draw) -> dict[str, str]:
    kw = {}
    for name, (usual, strange) in EST_PARAMS.items():
        if odd(draw, 30):
            kw[name] = choose(draw, usual, strange, 20)
    return kw


def class_labels(draw, n: int) -> str:
    """Classifier targets: integer, string or boolean labels; awkward ones now and then."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    c = draw(st.integers(2, 3))
    idx = rng.integers(0, c, n)
    idx[: min(n, c)] = np.arange(min(n, c))  # every class present when n allows
    kind = choose(draw, ["int", "str", "bool"],
                  ["uint64", "float", "negative", "multilabel", "one", "continuous", "nan",
                   "object", "column", "short"], 30)  # fmt: skip
    if kind == "int":
        return literal(idx)
    if kind == "str":
        return literal(np.array(["cat", "dog", "emu"])[idx])
    if kind == "bool":
        return literal(idx % 2 == 1)
    if kind == "uint64":
        return literal(idx.astype(np.uint64) + np.uint64(2**63))
    if kind == "float":
        return literal(idx.astype(np.float64))
    if kind == "negative":
        return literal(idx - 2**62)
    if kind == "multilabel":
        return literal(rng.integers(0, 2, (n, c)))
    if kind == "one":
        return literal(np.zeros(n, dtype=np.int64))
    if kind == "continuous":
        return literal(rng.standard_normal(n))
    if kind == "nan":
        labels = idx.astype(np.float64)
        labels[0] = np.nan
        return literal(labels)
    if kind == "object":
        return literal(np.array([1, "a", None, 2.5], dtype=object)[idx % 4])
    if kind == "column":
        return literal(idx[:, None])
    return literal(idx[:-1])


@st.composite
def plan_sklearn(draw) -> Plan:
    """MLPClassifier and MLPRegressor: random hyperparameters and data; fit, partial_fit,
    predict, predict_proba, score, warm starts with changed parameters, round trips."""
    plan, names = Plan(), Names()
    cls = draw(st.sampled_from(["MLPClassifier", "MLPRegressor"]))
    kw = est_params(draw)
    if cls == "MLPClassifier" and odd(draw, 20):
        kw["loss"] = choose(draw, ["'log_loss'", "'hinge'"], ["'squared_error'", "'x'"])
    if cls == "MLPClassifier" and odd(draw, 15):
        kw["class_weight"] = choose(
            draw, ["'balanced'", "{0: 2.0}", "None"], ["'even'", "{'nope': 1.0}", "[{}]", "3"]
        )
    if cls == "MLPRegressor" and odd(draw, 10):
        kw["loss"] = choose(
            draw,
            ["'squared_error'", "'poisson'", "'huber'", "'absolute_error'"],
            ["'hinge'", "'log_loss'"],
        )
    e = names("est")
    plan.append(Step(f"from mlpfast.sklearn import {cls}", api=False))
    plan.append(Step(f"{e} = {cls}({keywords_source(kw)})"))
    max_iter = kw.get("max_iter", "3")
    if "max_iter" not in kw:
        # scikit-learn's 200 epochs are slow for a fuzz budget; a few prove as much.
        plan.append(Step(f"{e}.set_params(max_iter=3)", needs=(e,), api=False))
    n, d = draw(st.integers(4, 12)), draw(st.integers(1, 4))
    for round_ in range(draw(st.integers(1, 3))):
        x = array_step(plan, names, draw(arrays((n, d), wrong=8)))
        if cls == "MLPClassifier":
            y = array_step(plan, names, class_labels(draw, n), "y")
        else:
            shape = (n,) if odd(draw, 70) else (n, 2)
            y = array_step(plan, names, draw(arrays(shape, wrong=8)), "y")
        what = "fit" if round_ == 0 else draw(st.sampled_from(["fit", "partial_fit",
                                                               "set_params"]))  # fmt: skip
        common = {"watch": (e,), "meta": {"trains": True, "unsigned": "'<u" in plan[-1].code}}
        if what == "set_params":
            name = draw(st.sampled_from(sorted(EST_PARAMS)))
            value = choose(draw, *EST_PARAMS[name], 30)
            plan.append(Step(f"{e}.set_params({name}={value}, warm_start=True)", needs=(e,),
                             api=False))  # fmt: skip
            max_iter = value if name == "max_iter" else max_iter
            what = "fit"
        if what == "fit":
            # 2**80 epochs must be refused or stop: cb_stop ends them after one.
            huge = big_int(evaluate(max_iter))
            cb = ""
            if huge or odd(draw, 15):
                cb = ", callbacks=" + ("cb_stop" if huge else choose(
                    draw, ["cb_none", "cb_stop"], ["cb_raise", "cb_predict", "cb_copy",
                                                   "cb_write", "cb_array", "1"], 50))  # fmt: skip
            sw = ""
            if odd(draw, 15):
                # Row weights of any values, of the right length or not.
                length = n if not odd(draw, 20) else draw(st.integers(0, n + 1))
                w = array_step(plan, names, draw(arrays((length,), wrong=8)), "w")
                sw = f", sample_weight={w}"
            plan.append(Step(f"{e}.fit({x}, {y}{sw}{cb})", needs=(e, x, y), check="est_fit",
                             **common))  # fmt: skip
        else:
            classes = ""
            if cls == "MLPClassifier" and not odd(draw, 20):
                classes = f", classes=np.unique({y})"
            plan.append(Step(f"{e}.partial_fit({x}, {y}{classes})", needs=(e, x, y),
                             check="est_fit", meta={"trains": True, "optional": "partial_fit"},
                             watch=(e,)))  # fmt: skip
        for _ in range(draw(st.integers(1, 3))):
            x2 = array_step(plan, names, draw(arrays((draw(st.integers(1, 5)), d), wrong=10)))
            what = draw(st.sampled_from(["predict", "predict_proba", "decision_function",
                                         "score", "pickle", "bytes"]))  # fmt: skip
            read = {"needs": (e, x2), "watch": (e,), "pure": True}
            if what == "predict":
                plan.append(Step(f"{e}.predict({x2})", check="est_predict", meta={"x": x2},
                                 **read))  # fmt: skip
            elif what in ("predict_proba", "decision_function"):
                plan.append(Step(f"{e}.{what}({x2})", meta={"x": x2, "optional": what},
                                 check="est_proba" if what == "predict_proba" else None,
                                 **read))  # fmt: skip
            elif what == "score":
                plan.append(Step(f"{e}.score({x}, {y})", needs=(e, x, y), watch=(e,),
                                 pure=True, check="est_score"))  # fmt: skip
            elif what == "pickle":
                plan.append(Step(f"{names('est')} = pickle.loads(pickle.dumps({e}))", check="same",
                                 meta={"of": e}, **read))  # fmt: skip
            else:
                plan.append(
                    Step(f"{names('est')} = mlpfast.io.from_bytes(mlpfast.io.to_bytes({e}))",
                         check="same", meta={"of": e}, **read)
                )  # fmt: skip
    return plan


@st.composite
def plan_files(draw) -> Plan:
    """save/load, to_bytes/from_bytes, pickle and copy round trips, exact to the bit."""
    plan, names = Plan(), Names()
    kind = draw(st.sampled_from(["MLP", "MLP", "Linear", "Maxout", "LeakyReLU", "ELU",
                                 "estimator"]))  # fmt: skip
    if kind == "MLP":
        spec = draw(model_specs())
        o = model_plan(draw, plan, names, spec)
        x = array_step(plan, names, draw(arrays((3, spec.d), wrong=0)))
        if odd(draw, 40):
            y = array_step(plan, names, targets(draw, spec, 3, wrong=0), "y")
            plan.append(Step(f"{o}.fit({x}, {y}, epochs=1, lr=0.01)", needs=(o, x, y),
                             watch=(o,), check="fit", meta={"trains": True}))  # fmt: skip
    elif kind in ("Linear", "Maxout"):
        dtype = draw(st.sampled_from(["float32", "float64"]))
        o = names("g")
        plan.append(Step(f"{o} = mlpfast.{kind}(3, 2, dtype={dtype!r}, seed=1)"))
    elif kind in ("LeakyReLU", "ELU"):
        o = names("a")
        alpha = draw(st.sampled_from(["0.3", "-0.0", "5e-324"]))
        plan.append(Step(f"{o} = mlpfast.{kind}({alpha})"))
    else:
        cls = draw(st.sampled_from(["MLPClassifier", "MLPRegressor"]))
        o = names("est")
        plan.append(Step(f"from mlpfast.sklearn import {cls}", api=False))
        dtype = draw(st.sampled_from(["'float32'", "'float64'", "np.float64"]))
        plan.append(Step(f"{o} = {cls}((3,), max_iter=2, random_state=0, dtype={dtype})"))
        x = array_step(plan, names, literal(np.random.default_rng(0).standard_normal((6, 2))))
        labels = class_labels(draw, 6) if cls == "MLPClassifier" else literal(np.arange(6.0))
        y = array_step(plan, names, labels, "y")
        plan.append(Step(f"{o}.fit({x}, {y})", needs=(o, x, y), watch=(o,),
                         check="est_fit", meta={"trains": True}))  # fmt: skip
    if kind in ("MLP", "Linear", "Maxout") and odd(draw, 50):
        # Values the formats must keep exactly: -0.0, subnormals, the largest floats.
        value = draw(st.sampled_from(["-0.0", "5e-324", "1e-45", "3.4028235e38", "1e300"]))
        layer = f"{o}.param_layers[0]" if kind == "MLP" else o
        plan.append(Step(f"{layer}.weight.flat[0] = {value}", needs=(o,), api=False))
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["bytes", "file", "pickle", "deepcopy", "damaged", "badpath"]))
        o2 = names("r")
        read = {"needs": (o,), "watch": (o,), "pure": True}
        meta = {"of": o}
        if how == "pickle":
            protocol = draw(st.integers(0, 5))
            plan.append(Step(f"{o2} = pickle.loads(pickle.dumps({o}, protocol={protocol}))",
                             check="same", meta=meta, **read))  # fmt: skip
        elif how == "deepcopy":
            plan.append(Step(f"{o2} = copy.deepcopy({o})", check="same", meta=meta, **read))
        elif kind in ("MLP", "estimator"):
            if how == "bytes":
                plan.append(Step(f"{o2} = mlpfast.io.from_bytes(mlpfast.io.to_bytes({o}))",
                                 check="same", meta=meta, **read))  # fmt: skip
            elif how == "file":
                path = draw(
                    st.sampled_from(
                        [
                            "tmp + '/m.safetensors'",
                            "tmp + '/ü ñ.st'",
                            "__import__('pathlib').Path(tmp) / 'p.st'",
                        ]
                    )
                )
                saved = names("saved")  # defined only if save returned: load needs it
                plan.append(Step(f"{saved} = mlpfast.save({o}, {path})", paths=True, **read))
                plan.append(Step(f"{o2} = mlpfast.load({path})", check="same", meta=meta,
                                 paths=True, **{**read, "needs": (saved,)}))  # fmt: skip
            elif how == "damaged":
                cut = draw(st.integers(0, 400))
                flip = draw(st.integers(0, 10**6))
                plan.append(Step(f"b = bytearray(mlpfast.io.to_bytes({o}))", needs=(o,),
                                 watch=(o,), pure=True))  # fmt: skip
                if odd(draw, 50):
                    plan.append(Step(f"b[{flip} % len(b)] ^= 0xFF", needs=("b",), api=False))
                else:
                    plan.append(Step(f"del b[len(b) - {cut} - 1:]", needs=("b",), api=False))
                plan.append(Step(f"{o2} = mlpfast.io.from_bytes(bytes(b))", needs=("b",),
                                 check="loaded"))  # fmt: skip
            else:
                path = draw(
                    st.sampled_from(
                        ["tmp", "tmp + '/no/such/dir/m.st'", "''", "None", "3.5", "tmp + '/\\0'"]
                    )
                )
                plan.append(Step(f"mlpfast.save({o}, {path})", paths=True, **read))
                plan.append(Step(f"mlpfast.load({path})", paths=True))
    return plan


PROPERTIES: dict[str, tuple[Callable[[], st.SearchStrategy], int]] = {
    # name: (strategy of plans, examples per CI run)
    "construct": (plan_construct, 600),
    "model": (plan_model, 800),
    "fit": (plan_fit, 800),
    "gates": (plan_gates, 600),
    "losses": (plan_losses, 500),
    "sklearn": (plan_sklearn, 400),
    "files": (plan_files, 300),
}


# --------------------------------------------------------------------------- running
def execute(prop: str, plan: Plan) -> None:
    threads = mlpfast.get_num_threads()
    runner = Runner(prop)
    try:
        runner.run(plan)
    finally:
        mlpfast.set_num_threads(threads)  # a plan's set_num_threads stays in its example
        shutil.rmtree(runner.ns["tmp"], ignore_errors=True)


def run_property(prop: str, examples: int, seed: int | None, survey: bool) -> int:
    strategy = PROPERTIES[prop][0]()
    count = [0]

    def body(plan: Plan) -> None:
        count[0] += 1
        if survey:
            run_forked(prop, plan)
        else:
            execute(prop, plan)

    test = given(strategy)(body)
    test = settings(
        max_examples=examples,
        deadline=None,
        database=None,  # no example database: every run is the same run
        derandomize=seed is None,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.generate] if survey else [Phase.generate, Phase.shrink],
        print_blob=False,
    )(test)
    if seed is not None:
        from hypothesis import seed as hseed

        test = hseed(seed)(test)
    test()
    return count[0]


def run_forked(prop: str, plan: Plan) -> None:
    """Survey mode: the plan in a child process, so that a crash is one finding among many."""
    global _RECORDS
    read, write = os.pipe()
    err = os.open(os.path.join(os.environ.get("FUZZ_TMP", "/tmp"), "fuzz_stderr"),
                  os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)  # fmt: skip
    pid = os.fork()
    if pid == 0:
        os.close(read)
        os.dup2(err, 2)
        _RECORDS = []
        code = 0
        try:
            execute(prop, plan)
        except BaseException:
            _RECORDS.append({"prop": prop, "key": "harness error", "what": "harness error",
                             "script": repr(plan), "detail": traceback.format_exc()})  # fmt: skip
            code = 3
        os.write(write, json.dumps(_RECORDS).encode())
        os.close(write)
        os._exit(code)
    os.close(write)
    chunks = []
    while chunk := os.read(read, 1 << 16):
        chunks.append(chunk)
    os.close(read)
    _, status = os.waitpid(pid, 0)
    records = json.loads(b"".join(chunks) or b"[]")
    if os.WIFSIGNALED(status):
        os.lseek(err, 0, 0)
        stderr = os.read(err, 1 << 16).decode("utf-8", "replace")
        last = ""
        if _LAST_FD is not None:
            os.lseek(_LAST_FD, 0, 0)
            last = os.read(_LAST_FD, 1 << 20).decode("utf-8", "replace")
        last_line = last.strip().splitlines()[-1] if last.strip() else "?"
        head = re.match(r"(?:\w+ = )?([\w.]+)", last_line)
        first_err = next((ln for ln in stderr.splitlines() if ln.strip()), "")
        records.append({
            "prop": prop,
            "key": f"{head.group(1) if head else '?'}: crash, signal {os.WTERMSIG(status)}: "
                   f"{norm_message(first_err)}",
            "what": f"crash (signal {os.WTERMSIG(status)})",
            "script": last[len(HEADER):] if last.startswith(HEADER) else last,
            "detail": stderr[-2000:],
        })  # fmt: skip
    os.close(err)
    with open(os.environ["FUZZ_SURVEY"], "a") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


def limit_memory() -> None:
    """A huge allocation must fail here as it would on a small machine: 4 GiB of address
    space, so that it surfaces as MemoryError (or an abort the parent reports)."""
    limit = int(os.environ.get("FUZZ_MEMORY_LIMIT", 4 << 30))
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def main(argv: list[str] | None = None) -> int:
    global _LAST_FD
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("property", nargs="?", choices=sorted(PROPERTIES))
    parser.add_argument("--examples", type=int, help="default: the property's CI budget")
    parser.add_argument("--list", action="store_true", help="print the properties and budgets")
    parser.add_argument("--seed", type=int, help="a random run instead of the fixed CI one")
    parser.add_argument(
        "--survey",
        metavar="FILE",
        help="developer's mode: every example in a child process, every finding appended to "
        "FILE as a JSON line, no shrinking (for listing many distinct failures at once)",
    )
    args = parser.parse_args(argv)
    if args.list:
        for name, (_, budget) in PROPERTIES.items():
            print(name, budget)
        return 0
    if args.property is None:
        parser.error("name a property")
    limit_memory()
    warnings.simplefilter("ignore")
    last = os.environ.get("FUZZ_LAST_CALL")
    if last:
        _LAST_FD = os.open(last, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    if args.survey:
        os.environ["FUZZ_SURVEY"] = args.survey
        with contextlib.suppress(ImportError):
            importlib.import_module("mlpfast.sklearn")  # once here, not in every child

    examples = args.examples or PROPERTIES[args.property][1]
    count = run_property(args.property, examples, args.seed, bool(args.survey))
    print(f"fuzz_api_worker: {args.property}: {count} examples passed")
    return 0


if __name__ == "__main__":
    import faulthandler

    faulthandler.enable()  # a crash prints the Python stack before the parent reads it
    sys.exit(main())
