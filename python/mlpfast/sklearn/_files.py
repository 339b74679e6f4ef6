"""How an estimator is held in a model file's metadata, and read back.

:func:`mlpfast.io.save` writes what an estimator's ``_mlpfast_file_state`` gives: its
network, and metadata of three fields beside the architecture — ``estimator`` (the class
name), ``params`` (``get_params()``) and ``fitted`` (the fitted attributes), both JSON in
:mod:`mlpfast._fields`' encoding. :func:`mlpfast.io.load` hands such a file to
:func:`mlpfast.sklearn.restore`, which picks the class and lets it rebuild itself.
"""

from __future__ import annotations

from typing import Any

from mlpfast._fields import decode_fields, encode_fields, fail, json_value, shown


def metadata(est: Any, params: dict[str, Any], fitted: dict[str, Any]) -> dict[str, str]:
    """The metadata fields of an estimator's file."""
    return {
        "kind": "estimator",
        "estimator": type(est).__name__,
        "params": encode_fields(params),
        "fitted": encode_fields(fitted),
    }


def read(meta: dict, where: str, limit: int) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """(class name, params, fitted) from an estimator's file metadata; their arrays may take
    ``limit`` bytes (:func:`mlpfast._fields.allocation_limit` of the file's size)."""
    params, fitted = json_value(meta, "params", where), json_value(meta, "fitted", where)
    if not (isinstance(params, dict) and isinstance(fitted, dict)):
        raise fail(where, "corrupt estimator metadata (params and fitted must be objects)")
    what = "estimator metadata"
    return (
        meta.get("estimator"),
        decode_fields(params, where, what, limit),
        decode_fields(fitted, where, what, limit),
    )


def unknown(name: Any, known: list[str], where: str) -> ValueError:
    """The error for a file naming an estimator mlpfast does not have."""
    return fail(where, f"unknown estimator {shown(name)} (expected one of {tuple(known)})")
