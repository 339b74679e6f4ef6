"""The JSON values a model file's metadata holds: parameters and fitted attributes.

Values JSON cannot say directly are tagged: non-finite floats (``{"__float__": "nan"}``),
tuples (``{"__tuple__": [...]}``) and numpy arrays (``{"__ndarray__": {"dtype", "shape",
"values"}}``, so that string, integer and boolean labels come back with their dtype).
:func:`decode` reads back only what :func:`encode` writes, and raises ``ValueError`` on
anything else. Shared by :mod:`mlpfast.io` and the estimators' file state; imports neither.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np

_ARRAY_DTYPE = re.compile(r"^[<>|=]?(b1|i[1248]|u[1248]|f[48]|U\d{1,6}|O)$")


def fail(where: str, what: str) -> ValueError:
    """The error for a bad model file: where it came from, and what is wrong."""
    return ValueError(f"{where}: {what}")


def json_value(meta: dict, key: str, where: str) -> Any:
    """Metadata field ``key`` parsed as JSON."""
    try:
        return json.loads(meta[key])
    except (KeyError, TypeError, ValueError, RecursionError):
        raise fail(where, f"metadata field {key!r} is missing or not valid JSON") from None


def is_count(v: Any) -> bool:
    """True for a JSON integer >= 0."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


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
        if not _ARRAY_DTYPE.match(value.dtype.str):
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


def decode(value: Any) -> Any:
    """Inverse of :func:`_encode`; ValueError on anything it did not write."""
    if value is None or isinstance(value, (bool, str, int, float)):
        return value
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict) and len(value) == 1:
        ((tag, body),) = value.items()
        if tag == "__float__" and body in ("inf", "-inf", "nan"):
            return float(body)
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(decode(v) for v in body)
        if tag == "__ndarray__" and isinstance(body, dict):
            return _decode_array(body)
    raise ValueError(f"unexpected value {value!r}")


def _decode_array(body: dict) -> np.ndarray:
    dtype, shape, values = body.get("dtype"), body.get("shape"), body.get("values")
    if not (isinstance(dtype, str) and _ARRAY_DTYPE.match(dtype)):
        raise ValueError(f"unexpected array dtype {dtype!r}")
    if not (isinstance(shape, list) and all(is_count(s) for s in shape)):
        raise ValueError(f"unexpected array shape {shape!r}")
    if not isinstance(values, list) or len(values) != math.prod(shape):
        raise ValueError(f"array values do not match the shape {shape}")
    values = [decode(v) for v in values]
    if not all(isinstance(v, (str, int, float, bool)) for v in values):
        raise ValueError("array values must be str, int, float or bool")
    out = np.empty(len(values), dtype=np.dtype(dtype))
    out[:] = values
    return out.reshape(shape)


def encode_fields(fields: dict[str, Any]) -> str:
    """JSON text of a dict of parameters or attributes (see the module docstring)."""
    return json.dumps({k: encode(v) for k, v in fields.items()}, allow_nan=False)


def decode_fields(text: Any, where: str, what: str) -> dict[str, Any]:
    """A dict written by :func:`encode_fields`, decoded; ValueError naming ``what`` if not."""
    if not isinstance(text, dict):
        raise fail(where, f"corrupt {what} (expected an object)")
    try:
        return {k: decode(v) for k, v in text.items()}
    except (ValueError, TypeError, RecursionError) as exc:
        raise fail(where, f"corrupt {what} ({exc})") from None
