"""The JSON values a model file's metadata holds: parameters and fitted attributes.

Values JSON cannot say directly are tagged: non-finite floats (``{"__float__": "nan"}``),
tuples (``{"__tuple__": [...]}``) and numpy arrays (``{"__ndarray__": {"dtype", "shape",
"values"}}``, so that string, integer and boolean labels come back with their dtype).
:func:`decode` reads back only what :func:`encode` writes, and raises ``ValueError`` on
anything else. Shared by :mod:`mlpfast.io` and the estimators' file state; imports neither.

Files come from anywhere, so nothing a file declares is trusted with memory: the arrays it
describes may take at most :func:`allocation_limit` bytes of the file's size, checked before
numpy allocates them, and error messages show untrusted values shortened (:func:`shown`).
"""

from __future__ import annotations

import json
import math
import re
import reprlib
from typing import Any

import numpy as np

_ARRAY_DTYPE = re.compile(r"[<>|=]?(b1|i[1248]|u[1248]|f[48]|U[1-9]\d{0,5}|O)")
# encode writes values nested a few levels deep (a list of tuples at most); far deeper
# nesting is hostile, and would exhaust the stack of the recursive decode and of repr.
_MAX_DEPTH = 32
_MAX_NDIM = 32  # numpy's limit (NPY_MAXDIMS) since its first release
# What a file's arrays may take: a multiple of the file's size (a file of N bytes holds
# at most N / 2 JSON numbers, 8 bytes each as an array), plus room for the short files
# whose labels' dtype is wider than the labels.
ALLOC_FACTOR = 8
ALLOC_SLACK = 1 << 20

_short = reprlib.Repr()
_short.maxlevel, _short.maxstring, _short.maxother, _short.maxlong = 3, 60, 60, 40


def shown(value: Any) -> str:
    """``repr(value)`` cut short: a file's values can be huge or nested thousands deep."""
    return _short.repr(value)


def fail(where: str, what: str) -> ValueError:
    """The error for a bad model file: where it came from, and what is wrong."""
    return ValueError(f"{where}: {what}")


def allocation_limit(file_size: int) -> int:
    """The most bytes the values of a ``file_size``-byte file may make the loader allocate."""
    return ALLOC_FACTOR * file_size + ALLOC_SLACK


def json_value(meta: dict, key: str, where: str) -> Any:
    """Metadata field ``key`` parsed as JSON."""
    try:
        return json.loads(meta[key])
    except (KeyError, TypeError, ValueError, RecursionError):
        raise fail(where, f"metadata field {key!r} is missing or not valid JSON") from None


def is_count(v: Any) -> bool:
    """True for a JSON integer >= 0."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def bounded_product(factors: list[int], cap: int) -> int | None:
    """The product of ``factors`` (counts), or None once it exceeds ``cap``: a file's
    shape may hold thousands of huge numbers, whose full product would itself be huge."""
    out = 1
    for f in factors:
        out *= f
        if out > cap:
            return None
    return out


def encode(value: Any) -> Any:
    """A JSON-able form of a parameter or attribute value (tagged where JSON falls short)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        f = float(value)
        return f if math.isfinite(f) else {"__float__": repr(f)}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, np.ndarray):
        if not _ARRAY_DTYPE.fullmatch(value.dtype.str):
            raise TypeError(f"cannot save an array of dtype {value.dtype}")
        items = value.ravel().tolist()
        if value.dtype.kind == "O" and not all(
            isinstance(v, (str, int, float, bool)) for v in items
        ):
            raise TypeError("cannot save an object array of other than str, int, float, bool")
        return {
            "__ndarray__": {
                "dtype": value.dtype.str,
                "shape": list(value.shape),
                "values": [encode(v) for v in items],
            }
        }
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, type) and issubclass(value, np.generic):
        return np.dtype(value).name
    raise TypeError(f"cannot save the value {value!r} ({type(value).__name__})")


class _Budget:
    """The bytes a file's arrays may still take (see :func:`allocation_limit`)."""

    def __init__(self, limit: int):
        self.limit = limit
        self.left = limit

    def take(self, nbytes: int, what: str) -> None:
        if nbytes > self.left:
            raise ValueError(
                f"{what} needs {nbytes} bytes, more than the file's values may take "
                f"({self.limit} bytes, {ALLOC_FACTOR} x the file's size + {ALLOC_SLACK})"
            )
        self.left -= nbytes


def decode(value: Any, budget: _Budget, depth: int = 0) -> Any:
    """Inverse of :func:`encode`; ValueError on anything it did not write."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if depth >= _MAX_DEPTH:
        raise ValueError(f"values nested more than {_MAX_DEPTH} deep")
    if isinstance(value, list):
        return [decode(v, budget, depth + 1) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, body),) = value.items()
        if tag == "__float__" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(decode(v, budget, depth + 1) for v in body)
        if tag == "__ndarray__" and isinstance(body, dict):
            return _decode_array(body, budget)
    raise ValueError(f"unexpected value {shown(value)}")


def _array_item(v: Any) -> Any:
    """An array element as :func:`encode` writes it: a scalar, or a non-finite float."""
    if isinstance(v, dict) and len(v) == 1 and v.get("__float__") in ("inf", "-inf", "nan"):
        return float(v["__float__"])
    if isinstance(v, (str, int, float)):  # bool is an int
        return v
    raise ValueError(f"array values must be str, int, float or bool, not {shown(v)}")


def _fits(v: Any, dtype: np.dtype) -> bool:
    """Whether ``v`` is what :func:`encode` writes for an element of ``dtype``: numpy would
    otherwise convert it (a float truncated to an int, a string cut to the width, a
    string parsed as a number) or raise OverflowError (2**70 as int64, -1 as uint8)."""
    kind = dtype.kind
    if kind == "O":
        return True
    if kind == "b":
        return isinstance(v, bool)
    if isinstance(v, bool):
        return False
    if kind in "iu":
        info = np.iinfo(dtype)
        return isinstance(v, int) and info.min <= v <= info.max
    if kind == "f":
        if isinstance(v, float) and not math.isfinite(v):
            return True
        # Python's int / float comparison is exact, for ints of any size.
        return isinstance(v, (int, float)) and abs(v) <= float(np.finfo(dtype).max)
    return isinstance(v, str) and len(v) <= dtype.itemsize // 4  # "U": 4 bytes a character


def _decode_array(body: dict, budget: _Budget) -> np.ndarray:
    dtype, shape, values = body.get("dtype"), body.get("shape"), body.get("values")
    if not (isinstance(dtype, str) and _ARRAY_DTYPE.fullmatch(dtype)):
        raise ValueError(f"unexpected array dtype {shown(dtype)}")
    dt = np.dtype(dtype)
    if not (
        isinstance(shape, list) and len(shape) <= _MAX_NDIM and all(is_count(s) for s in shape)
    ):
        raise ValueError(f"unexpected array shape {shown(shape)}")
    if not isinstance(values, list):
        raise ValueError(f"array values must be a list, not {shown(values)}")
    if 0 in shape:
        # Nothing to allocate, but numpy still needs the other dimensions' product to fit.
        if values or bounded_product([s for s in shape if s], budget.left // dt.itemsize) is None:
            raise ValueError(f"array values do not match the empty shape {shown(shape)}")
    elif bounded_product(shape, len(values)) != len(values):
        raise ValueError(f"array values do not match the shape {shown(shape)}")
    budget.take(len(values) * dt.itemsize, f"array of {len(values)} x {dtype}")
    items = [_array_item(v) for v in values]
    for v in items:
        if not _fits(v, dt):
            raise ValueError(f"array value {shown(v)} does not fit the array's dtype {dtype}")
    out = np.empty(len(items), dtype=dt)
    out[:] = items
    return out.reshape(shape)


def encode_fields(fields: dict[str, Any]) -> str:
    """JSON text of a dict of parameters or attributes (see the module docstring)."""
    return json.dumps({k: encode(v) for k, v in fields.items()}, allow_nan=False)


def decode_fields(text: Any, where: str, what: str, limit: int) -> dict[str, Any]:
    """A dict written by :func:`encode_fields`, decoded; ValueError naming ``what`` if not.
    Its arrays may take ``limit`` bytes (:func:`allocation_limit` of the file's size)."""
    if not isinstance(text, dict):
        raise fail(where, f"corrupt {what} (expected an object)")
    budget = _Budget(limit)
    decoded = {}
    for k, v in text.items():
        try:
            decoded[k] = decode(v, budget)
        except ValueError as exc:
            raise fail(where, f"corrupt {what}: field {shown(k)}: {exc}") from None
    return decoded
