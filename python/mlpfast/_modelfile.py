"""mlpfast's model file format (safetensors), written and read with numpy alone.

A file is::

    8 bytes     N, the header's length, an unsigned little-endian integer
    N bytes     the header: UTF-8 JSON, padded with spaces to a multiple of 8 bytes
    the rest    the tensors' raw little-endian bytes, back to back

The header maps every tensor's name (``layers.{i}.weight``, ``layers.{i}.bias`` for the i-th
parameter layer — ``Linear``, ``Maxout`` or ``BatchNorm`` — and ``layers.{i}.running_mean``,
``layers.{i}.running_var`` for a ``BatchNorm``) to ``{"dtype": "F32" | "F64", "shape": [...],
"data_offsets": [begin, end]}`` (offsets into the bytes after the header), and
``"__metadata__"`` to string values:

* ``format`` = ``"mlpfast"`` and ``format_version`` = ``"1"``: the marker of mlpfast's files;
* ``layer_sizes`` (JSON list), ``activation``, ``loss``, ``dtype``, ``pieces`` (JSON list,
  per parameter layer: the Maxout pieces, or null for a Linear or BatchNorm layer),
  ``dropout`` (a JSON number) and ``batch_norm`` (JSON true or false) — both absent in files
  written before they existed, meaning 0 and false: the architecture;
* ``kind``: ``"MLP"``, or ``"estimator"`` for the scikit-learn estimators, whose files also
  hold ``estimator`` (``"MLPClassifier"`` or ``"MLPRegressor"``), ``params`` (``get_params()``
  as JSON) and ``fitted`` (the fitted attributes as JSON; arrays such as ``classes_`` with
  their dtype, so that string, integer and boolean labels come back as they were).

Any safetensors reader can read the tensors. Reading never executes code: the header is
parsed as JSON, every field is checked, and only mlpfast's own classes are built. A
truncated, corrupt or foreign file raises ``ValueError`` saying what is wrong.
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
from typing import Any

import numpy as np

from mlpfast._core import ACTIVATIONS, LOSSES, MAXOUT_PIECES, MLP, BatchNorm, Maxout
from mlpfast._fields import bounded_product, fail, is_count, json_value, shown

FORMAT = "mlpfast"
FORMAT_VERSION = "1"
_ST_DTYPES = {"float32": "F32", "float64": "F64"}
_NP_DTYPES: dict[str, np.dtype[Any]] = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_MAX_HEADER = 100 * 1024 * 1024
# A parameter layer's tensors, in order (a BatchNorm has all four, the others two).
_TENSORS = ("weight", "bias", "running_mean", "running_var")


# --------------------------------------------------------------------------- writing
def _architecture(model: MLP) -> dict[str, str]:
    pieces = [lay.pieces if isinstance(lay, Maxout) else None for lay in model.param_layers]
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": "MLP",
        "layer_sizes": json.dumps(model.layer_sizes),
        "activation": model.activation,
        "loss": model.loss_name,
        "dtype": model.dtype,
        "pieces": json.dumps(pieces),
        "dropout": json.dumps(model.dropout),
        "batch_norm": json.dumps(model.batch_norm),
    }


def encode(mlp: MLP, extra: dict[str, str]) -> bytes:
    """The file of ``mlp``, its metadata completed by ``extra`` (an estimator's fields)."""
    metadata = _architecture(mlp)
    metadata.update(extra)
    st_dtype = _ST_DTYPES[mlp.dtype]
    header: dict[str, Any] = {"__metadata__": metadata}
    buffers = []
    offset = 0
    # One moment's weights, also while a fit publishes epochs.
    for i, arrays in enumerate(mlp._params()):
        for name, arr in zip(_TENSORS, arrays):
            raw = np.ascontiguousarray(arr, dtype=_NP_DTYPES[st_dtype]).tobytes()
            header[f"layers.{i}.{name}"] = {
                "dtype": st_dtype,
                "shape": list(arr.shape),
                "data_offsets": [offset, offset + len(raw)],
            }
            buffers.append(raw)
            offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return b"".join([struct.pack("<Q", len(text)), text, *buffers])


def write(path: str | os.PathLike, data: bytes) -> None:
    """Writes ``data`` to ``path`` through a temporary file, so that a failed write leaves any
    existing file as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".mlpfast-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --------------------------------------------------------------------------- reading
def _read_header(data: bytes, where: str) -> tuple[dict, memoryview]:
    if len(data) < 8:
        raise fail(where, f"truncated file: {len(data)} bytes, shorter than the 8-byte header")
    (n,) = struct.unpack_from("<Q", data)
    if n > _MAX_HEADER:
        raise fail(where, f"not a safetensors file (header length {n} is implausible)")
    if len(data) < 8 + n:
        raise fail(
            where, f"truncated file: the header needs {n} bytes, only {len(data) - 8} are there"
        )
    try:
        header = json.loads(bytes(data[8 : 8 + n]).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise fail(where, f"corrupt header (not valid UTF-8 JSON: {exc})") from None
    if not isinstance(header, dict):
        raise fail(where, "corrupt header (not a JSON object)")
    return header, memoryview(data)[8 + n :]


def _tensor_span(name: str, info: Any, size: int, where: str) -> tuple[int, int]:
    """(begin, end) of a tensor's bytes in the ``size``-byte data section, its dtype and
    shape checked against them."""
    what = f"tensor {shown(name)}"
    if not isinstance(info, dict):
        raise fail(where, f"corrupt header: {what} is not described by an object")
    dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
    if not (isinstance(dtype, str) and dtype in _NP_DTYPES):
        raise fail(where, f"{what}: unsupported dtype {shown(dtype)} (expected 'F32' or 'F64')")
    # mlpfast's tensors have 1 to 3 dimensions (pieces, fan_in, fan_out), none empty.
    if not (
        isinstance(shape, list)
        and 1 <= len(shape) <= 3
        and all(is_count(s) and s > 0 for s in shape)
    ):
        raise fail(where, f"{what}: bad shape {shown(shape)} (expected 1 to 3 positive integers)")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(is_count(o) for o in offsets)
        and offsets[0] <= offsets[1] <= size
    ):
        raise fail(
            where,
            f"{what}: data_offsets {shown(offsets)} out of range of the {size}-byte data "
            "section (truncated or corrupt file)",
        )
    begin, end = offsets
    itemsize = _NP_DTYPES[dtype].itemsize
    count = bounded_product(shape, (end - begin) // itemsize)
    if count is None or count * itemsize != end - begin:
        needs = "more than that" if count is None else f"{count * itemsize} bytes"
        raise fail(
            where,
            f"{what}: shape {shown(shape)} of {dtype} needs {needs}, its offsets span "
            f"{end - begin}",
        )
    return begin, end


def _read_tensors(header: dict, buf: memoryview, where: str) -> dict[str, np.ndarray]:
    spans = sorted(
        (*_tensor_span(name, info, len(buf), where), name)
        for name, info in header.items()
        if name != "__metadata__"
    )
    # Checked before any tensor is copied: tensors that overlap could make the copies many
    # times the file's size.
    at = 0
    for begin, end, name in spans:
        if begin != at:
            raise fail(where, f"corrupt file: tensor {shown(name)} overlaps or leaves a gap")
        at = end
    if at != len(buf):
        raise fail(where, f"corrupt file: {len(buf) - at} bytes after the last tensor")
    tensors = {}
    for begin, end, name in spans:
        info = header[name]
        # A copy: aligned, in native byte order, independent of the file's buffer.
        raw = np.frombuffer(buf[begin:end], dtype=_NP_DTYPES[info["dtype"]])
        tensors[name] = raw.astype(raw.dtype.newbyteorder("="), copy=True).reshape(info["shape"])
    return tensors


def _expected_layers(sizes: list[int], pieces: int | None, batch_norm: bool) -> list[tuple]:
    """Per parameter layer, (its Maxout pieces or None, its tensors' shapes in ``_TENSORS``
    order), for hidden layers of ``pieces`` Maxout pieces (None: Linear), each followed by a
    BatchNorm when ``batch_norm``."""
    layers: list[tuple] = []
    last = len(sizes) - 2
    for i in range(last + 1):
        fan_in, fan_out = sizes[i], sizes[i + 1]
        p = pieces if i < last else None
        if p is None:
            layers.append((None, ((fan_in, fan_out), (fan_out,))))
        else:
            layers.append((p, ((p, fan_in, fan_out), (p, fan_out))))
        if batch_norm and i < last:
            layers.append((None, ((fan_out,),) * 4))
    return layers


def _build_mlp(meta: dict, tensors: dict[str, np.ndarray], where: str) -> MLP:
    sizes = json_value(meta, "layer_sizes", where)
    pieces = json_value(meta, "pieces", where)
    activation, loss, dtype = meta.get("activation"), meta.get("loss"), meta.get("dtype")
    if not (
        isinstance(sizes, list) and len(sizes) >= 2 and all(is_count(s) and s > 0 for s in sizes)
    ):
        raise fail(where, f"bad layer_sizes {shown(sizes)}")
    if activation not in ACTIVATIONS:
        raise fail(where, f"unknown activation {shown(activation)}")
    if loss not in LOSSES:
        raise fail(where, f"unknown loss {shown(loss)}")
    if dtype not in _ST_DTYPES:
        raise fail(where, f"unknown dtype {shown(dtype)}")
    # Files written before batch_norm existed have none.
    batch_norm = json_value(meta, "batch_norm", where) if "batch_norm" in meta else False
    if not isinstance(batch_norm, bool):
        raise fail(where, f"bad batch_norm {shown(batch_norm)}")
    hidden_pieces = MAXOUT_PIECES if activation == "maxout" else None
    layers = _expected_layers(sizes, hidden_pieces, batch_norm)
    want_pieces = [p for p, _ in layers]
    shapes = [layer_shapes for _, layer_shapes in layers]
    if pieces != want_pieces:
        raise fail(
            where, f"pieces {shown(pieces)} do not match the architecture ({shown(want_pieces)})"
        )
    names = {f"layers.{i}.{k}" for i, s in enumerate(shapes) for k in _TENSORS[: len(s)]}
    if set(tensors) != names:
        missing, extra = sorted(names - set(tensors)), sorted(set(tensors) - names)
        raise fail(
            where,
            f"tensors do not match the architecture (missing {shown(missing)}, "
            f"extra {shown(extra)})",
        )
    for i, layer_shapes in enumerate(shapes):
        for k, shape in zip(_TENSORS, layer_shapes):
            name = f"layers.{i}.{k}"
            t = tensors[name]
            if t.shape != shape:
                raise fail(where, f"tensor {name!r} has shape {t.shape}, expected {shape}")
            if t.dtype != _NP_DTYPES[_ST_DTYPES[dtype]]:
                raise fail(where, f"tensor {name!r} is {t.dtype}, the model is {dtype}")
    # Files written before dropout existed have none.
    dropout = json_value(meta, "dropout", where) if "dropout" in meta else 0.0
    if not (isinstance(dropout, float) or is_count(dropout)) or not 0.0 <= dropout < 1.0:
        raise fail(where, f"bad dropout {shown(dropout)}")
    model = MLP(
        sizes,
        activation=activation,
        loss=loss,
        dtype=dtype,
        dropout=float(dropout),
        batch_norm=batch_norm,
    )
    for i, lay in enumerate(model.param_layers):
        names = _TENSORS if isinstance(lay, BatchNorm) else _TENSORS[:2]
        for k in names:
            # Running variances below 0 are refused by the layer, with the tensor's name.
            try:
                setattr(lay, k, tensors[f"layers.{i}.{k}"])
            except ValueError as exc:
                raise fail(where, f"tensor 'layers.{i}.{k}': {exc}") from None
    return model


def decode(data: bytes, where: str) -> tuple[MLP, dict]:
    """The network a file holds, and the file's metadata (checked: a truncated, corrupt or
    foreign file raises ``ValueError`` saying what is wrong)."""
    header, buf = _read_header(data, where)
    meta = header.get("__metadata__")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise fail(where, "not an mlpfast model file (no mlpfast metadata marker)")
    if meta.get("format_version") != FORMAT_VERSION:
        raise fail(
            where,
            f"unsupported mlpfast format version {shown(meta.get('format_version'))} "
            f"(this mlpfast reads {FORMAT_VERSION!r})",
        )
    if not all(isinstance(v, str) for v in meta.values()):
        raise fail(where, "corrupt header: metadata values must be strings")
    tensors = _read_tensors(header, buf, where)
    model = _build_mlp(meta, tensors, where)
    return model, meta
