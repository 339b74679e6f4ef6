"""Safe model files: :func:`save` and :func:`load`.

The format (safetensors, with mlpfast's metadata) is :mod:`mlpfast._modelfile`'s: the
architecture and weights of a network, and for a scikit-learn estimator its parameters and
fitted attributes (see :mod:`mlpfast.sklearn._files`). Reading never executes code: the
header is parsed as JSON, every field is checked, and only mlpfast's own classes are built.
"""

from __future__ import annotations

import os
from typing import Any

from mlpfast import _modelfile
from mlpfast._core import MLP
from mlpfast._fields import allocation_limit, fail, shown

__all__ = ["load", "save"]


def to_bytes(model: Any) -> bytes:
    """The file :func:`save` writes, as bytes.

    Parameters
    ----------
    model : MLP, mlpfast.sklearn.MLPClassifier or mlpfast.sklearn.MLPRegressor
        The model; an estimator must be fitted.

    Returns
    -------
    bytes
        The safetensors file.
    """
    if isinstance(model, MLP):
        mlp, extra = model, {}
    elif hasattr(model, "_mlpfast_file_state"):
        mlp, extra = model._mlpfast_file_state()
    else:
        raise TypeError(
            "save: expected an mlpfast.MLP or a fitted mlpfast.sklearn estimator, got "
            f"{type(model).__name__}"
        )
    return _modelfile.encode(mlp, extra)


def save(model: Any, path: str | os.PathLike) -> None:
    """Writes a model to a safetensors file that :func:`load` reads back.

    ``mlpfast.save(mlp, "model.safetensors")`` for an :class:`mlpfast.MLP` (the native class
    has no ``save`` method), ``estimator.save(path)`` or ``mlpfast.save(estimator, path)``
    for a fitted :mod:`mlpfast.sklearn` estimator. The file holds the architecture, dtype and
    weights (and for estimators their parameters and fitted attributes), no code; not the
    optimizer state, the random generator or the training history of a bare MLP. It is
    written to a temporary file first and then renamed, so a failed save leaves any
    existing file as it was.

    Parameters
    ----------
    model : MLP or a fitted MLPClassifier / MLPRegressor
        What to save.
    path : str or os.PathLike
        The file to write (replaced if it exists).
    """
    _modelfile.write(path, to_bytes(model))


def from_bytes(data: bytes, *, where: str = "<bytes>") -> Any:
    """Reads a model from the bytes of a file :func:`save` wrote; see :func:`load`.

    Parameters
    ----------
    data : bytes
        The file's contents.
    where : str, optional
        Names the source in error messages.

    Returns
    -------
    MLP, MLPClassifier or MLPRegressor
        The model.
    """
    model, meta = _modelfile.decode(data, where)
    kind = meta.get("kind")
    if kind == "MLP":
        return model
    if kind != "estimator":
        raise fail(where, f"unknown kind {shown(kind)}")
    # An estimator's file: the estimators read the metadata they wrote.
    from mlpfast.sklearn import restore

    return restore(model, meta, where, allocation_limit(len(data)))


def load(path: str | os.PathLike) -> Any:
    """Reads a model written by :func:`save` (or an estimator's ``save``).

    Loading never executes code: the file's JSON header is parsed and checked field by
    field, the weights are read as raw little-endian floats, and only mlpfast's own
    classes are built.

    Parameters
    ----------
    path : str or os.PathLike
        The file.

    Returns
    -------
    MLP, MLPClassifier or MLPRegressor
        What was saved: a bare :class:`mlpfast.MLP` (with a fresh random generator and
        optimizer state), or a fitted estimator (which needs scikit-learn).

    Raises
    ------
    ValueError
        The file is truncated, corrupt (bad JSON, offsets out of range, unknown dtype,
        shapes that do not match the sizes or the architecture, values of the wrong type,
        arrays larger than such a file could hold) or not an mlpfast file.
    """
    with open(path, "rb") as f:
        data = f.read()
    return from_bytes(data, where=os.fspath(path))
