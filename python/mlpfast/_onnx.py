"""Export to ONNX: :func:`to_onnx`, and the graph code it shares with the skl2onnx converters.

What a model becomes (:func:`_spec`): its layers read from the native network (the weights
``predict`` computes with; an estimator's ``coefs_`` and ``intercepts_`` are views of them),
its dtype, and a *head* saying how the last layer's scores turn into the graph's outputs:

* ``argmax`` (softmax and svm losses): ``label`` is the index of the largest score (the first
  on ties, as mlpfast's), mapped through the class labels for an estimator;
* ``threshold`` (bce, logistic outputs): a label per output, 1 where the score is > 0; with
  one output (binary) it is mapped through the class labels, and ``probabilities`` are
  ``[1 - p, p]``;
* ``value`` (regression): ``variable`` is the output activation of the scores (``exp`` for
  poisson's log means, the scores themselves otherwise).

The graph is written through a :class:`_Builder`: :class:`_ProtoBuilder` here makes
``onnx.helper`` nodes for :func:`to_onnx`; ``mlpfast.sklearn._skl2onnx`` has one that adds
them to a skl2onnx container, so that the estimators convert inside skl2onnx pipelines.
Only standard ``ai.onnx`` operators are used (opset 17 for :func:`to_onnx`).
"""

from __future__ import annotations

import os
import sys
from typing import Any, NamedTuple

import numpy as np

from mlpfast._core import MLP, Activation, BatchNorm, Dropout, Linear, Maxout, __version__

# Opset 17 and IR version 8: read by every onnxruntime since 1.13; every operator used here
# has had its current form since opset 13.
OPSET = 17
IR_VERSION = 8

# The output activations a head applies to the scores, by the names of scikit-learn's
# ``out_activation_`` (mlpfast's estimators add "exp", a log link's mean).
_OUT_ONNX = {"identity": "Identity", "exp": "Exp", "logistic": "Sigmoid", "softmax": "Softmax"}

# Each loss of mlpfast.MLP: how its scores become predict's output, and the output
# activation of predict_proba (None where MLP has no predict_proba).
_LOSS_HEADS = {
    "softmax": ("argmax", "softmax"),
    "svm": ("argmax", None),
    "bce": ("threshold", "logistic"),
    "mse": ("value", "identity"),
    "half_squared_error": ("value", "identity"),
    "huber": ("value", "identity"),
    "mae": ("value", "identity"),
    "poisson": ("value", "exp"),
    "half_poisson_deviance": ("value", "exp"),
}

_ONNX_HINT = "pip install 'onnx>=1.16' (or, in mlpfast's source tree, pip install '.[onnx]')"


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(f"mlpfast.to_onnx needs onnx: {_ONNX_HINT}") from exc
    return onnx


# --------------------------------------------------------------------------- what is exported
class _Affine(NamedTuple):
    """``x @ weight + bias``; a maxout layer when ``weight`` is (pieces, in, out)."""

    weight: np.ndarray
    bias: np.ndarray


class _Norm(NamedTuple):
    """``x * scale + shift``: a BatchNorm in evaluation mode, folded (scale = weight /
    sqrt(running_var + eps), shift = bias - running_mean * scale, computed in float64)."""

    scale: np.ndarray
    shift: np.ndarray


class _Act(NamedTuple):
    """An elementwise activation by mlpfast's name, with its slope or scale ``alpha``."""

    name: str
    alpha: float | None


class _Head(NamedTuple):
    rule: str  # "argmax", "threshold" or "value"
    activation: str | None  # key of _OUT_ONNX for probabilities / variable; None: no proba
    classes: np.ndarray | None  # the labels indices map to (None: the indices themselves)
    outputs: tuple[str, ...]  # the graph's outputs, in order


class _Spec(NamedTuple):
    layers: list  # of _Affine, _Norm and _Act
    dtype: np.dtype
    n_features: int
    n_outputs: int  # columns of the last layer's scores
    head: _Head
    # The float outputs' dtype: the model's, but in a skl2onnx pipeline the pipeline's, as
    # skl2onnx's converters give theirs (the graph computes in ``dtype`` and casts).
    out_dtype: np.dtype | None = None

    def float_dtype(self) -> np.dtype:
        return self.dtype if self.out_dtype is None else self.out_dtype

    def output_types(self) -> list[tuple[str, np.dtype, list]]:
        """(name, element dtype, shape with None for the rows) of each graph output."""
        float_width = 2 if self.head.rule == "threshold" and self.n_outputs == 1 else None
        out = []
        for name in self.head.outputs:
            if name == "label":
                dtype = np.dtype(np.int64) if self.head.classes is None else self.head.classes.dtype
                multilabel = self.head.rule == "threshold" and self.n_outputs > 1
                out.append((name, dtype, [None, self.n_outputs] if multilabel else [None]))
            elif name == "probabilities":
                out.append((name, self.float_dtype(), [None, float_width or self.n_outputs]))
            else:  # "scores", "variable"
                out.append((name, self.float_dtype(), [None, self.n_outputs]))
        return out


def _layers(mlp: MLP) -> list:
    # One moment's parameters (also while a fit publishes epochs), in the layers' order.
    params = iter(mlp._params())
    layers: list = []
    for layer in mlp.layers:
        if isinstance(layer, (Linear, Maxout)):
            weight, bias = next(params)
            layers.append(_Affine(weight, bias))
        elif isinstance(layer, BatchNorm):
            # The graph predicts, in evaluation mode: by the running statistics.
            weight, bias, mean, var = (np.asarray(a, dtype=np.float64) for a in next(params))
            scale = weight / np.sqrt(var + layer.eps)
            layers.append(_Norm(scale, bias - mean * scale))
        elif isinstance(layer, Activation):
            layers.append(_Act(layer.name, getattr(layer, "alpha", None)))
        elif isinstance(layer, Dropout):
            continue  # the graph predicts, in evaluation mode: dropout is the identity
        else:  # pragma: no cover - MLP holds no other layers
            raise TypeError(f"to_onnx: unknown layer {layer!r}")
    return layers


def _class_labels(classes: Any) -> np.ndarray:
    """An estimator's ``classes_`` as ONNX holds labels: int64 or strings (as skl2onnx)."""
    classes = np.asarray(classes)
    if classes.dtype.kind in "iub":
        return classes.astype(np.int64)
    if classes.dtype.kind == "f":
        if np.all(np.isfinite(classes)) and np.array_equal(classes, np.round(classes)):
            return classes.astype(np.int64)
    elif classes.dtype.kind in "UO" and all(isinstance(c, str) for c in classes.tolist()):
        return classes.astype(object)
    raise ValueError(
        "to_onnx: expected classes_ of integers, booleans, integral floats or strings "
        f"(ONNX labels are int64 or strings), got {classes!r}"
    )


def _estimator_types() -> tuple[type, ...]:
    # mlpfast.sklearn is imported already whenever one of its estimators exists; importing
    # it here would need scikit-learn for every call.
    sk = sys.modules.get("mlpfast.sklearn")
    return (sk.MLPClassifier, sk.MLPRegressor) if sk is not None else ()


def _spec(model: Any) -> _Spec:
    """What :func:`to_onnx` and the skl2onnx converters export of ``model``."""
    estimators = _estimator_types()
    if isinstance(model, MLP):
        mlp = model
        loss = model.loss_name
        if loss not in _LOSS_HEADS:
            raise ValueError(f"to_onnx: no ONNX form for the loss {loss!r} of {model!r}")
        rule, proba = _LOSS_HEADS[loss]
        if rule == "value":
            head = _Head(rule, proba, None, ("variable",))
        else:
            outputs = ("label", "probabilities", "scores") if proba else ("label", "scores")
            head = _Head(rule, proba, None, outputs)
    elif estimators and isinstance(model, estimators):
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)
        mlp = model._mlp
        out = model.out_activation_
        if out not in _OUT_ONNX:
            raise ValueError(
                f"to_onnx: expected out_activation_ one of {sorted(_OUT_ONNX)}, got {out!r}"
            )
        if isinstance(model, estimators[1]):
            head = _Head("value", out, None, ("variable",))
        else:
            # A logistic output per class is thresholded; with one output it is binary and
            # mapped to classes_, with several (multilabel) it is the 0/1 label matrix.
            # Softmax and the hinge loss's identity outputs are one score per class.
            rule = "threshold" if out == "logistic" else "argmax"
            multilabel = rule == "threshold" and mlp.layer_sizes[-1] > 1
            classes = None if multilabel else _class_labels(model.classes_)
            head = _Head(rule, out, classes, ("label", "probabilities"))
    else:
        raise TypeError(
            "to_onnx: expected model to be an mlpfast.MLP or a fitted mlpfast.sklearn "
            f"MLPClassifier or MLPRegressor, got {type(model).__module__}."
            f"{type(model).__qualname__}"
        )
    sizes = mlp.layer_sizes
    return _Spec(_layers(mlp), np.dtype(mlp.dtype), sizes[0], sizes[-1], head)


# --------------------------------------------------------------------------- graph building
class _Builder:
    """Where a graph's constants and nodes go; subclasses write them somewhere."""

    def fresh(self, hint: str) -> str:
        """A name no other value of the graph has."""
        raise NotImplementedError

    def constant(self, hint: str, value: np.ndarray) -> str:
        """The name of a new initializer holding ``value``."""
        raise NotImplementedError

    def add(self, op: str, inputs: list[str], outputs: list[str], attrs: dict) -> None:
        raise NotImplementedError

    def op(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        """Adds one ``op`` node (default domain) and returns its output, ``out`` if given."""
        out = out or self.fresh(op.lower())
        self.add(op, inputs, [out], attrs)
        return out


class _ProtoBuilder(_Builder):
    """Collects ``onnx.helper`` nodes and initializers for a standalone model."""

    def __init__(self, reserved: list[str]):
        self.nodes: list = []
        self.initializers: list = []
        self._taken = set(reserved)

    def fresh(self, hint: str) -> str:
        i = 0
        while f"{hint}{i}" in self._taken:
            i += 1
        self._taken.add(f"{hint}{i}")
        return f"{hint}{i}"

    def constant(self, hint: str, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def add(self, op: str, inputs: list[str], outputs: list[str], attrs: dict) -> None:
        from onnx import helper

        self.nodes.append(helper.make_node(op, inputs, outputs, name=self.fresh(op), **attrs))


def _activation(b: _Builder, x: str, act: _Act, dtype: np.dtype) -> str:
    if act.name == "identity":
        return x
    if act.name in ("sigmoid", "tanh", "relu"):
        return b.op({"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}[act.name], [x])
    if act.name not in ("leaky_relu", "elu"):
        raise ValueError(f"to_onnx: no ONNX form for the activation {act.name!r}")
    if dtype == np.float32:
        op = "LeakyRelu" if act.name == "leaky_relu" else "Elu"
        return b.op(op, [x], alpha=float(act.alpha))
    # In float64 the function is written out, where(x > 0, x, alpha * x) or
    # where(x > 0, x, alpha * (e^x - 1)): ONNX attributes are float32, so LeakyRelu's alpha
    # would not be mlpfast's in float64 (0.01 is off by 2e-10), and onnxruntime's CPU
    # provider has no float64 Elu.
    alpha = b.constant("alpha", np.array(act.alpha, dtype))
    if act.name == "leaky_relu":
        negative = b.op("Mul", [alpha, x])
    else:
        one = b.constant("one", np.ones((), dtype))
        negative = b.op("Mul", [alpha, b.op("Sub", [b.op("Exp", [x]), one])])
    zero = b.constant("zero", np.zeros((), dtype))
    return b.op("Where", [b.op("Greater", [x, zero]), x, negative])


def _affine(b: _Builder, x: str, layer: _Affine, dtype: np.dtype, out: str | None) -> str:
    w, bias = np.asarray(layer.weight, dtype), np.asarray(layer.bias, dtype)
    if w.ndim == 2:
        return b.op("Gemm", [x, b.constant("W", w), b.constant("B", bias)], out)
    # Maxout: weight (pieces, in, out) side by side as one (in, pieces*out) product, piece p
    # in columns p*out..(p+1)*out, then the elementwise max of the pieces' column blocks.
    pieces, fan_in, fan_out = w.shape
    wide = w.transpose(1, 0, 2).reshape(fan_in, pieces * fan_out)
    z = b.op("Gemm", [x, b.constant("W", wide), b.constant("B", bias.reshape(-1))])
    axis = b.constant("axis", np.array([1], np.int64))
    blocks = [
        b.op(
            "Slice",
            [
                z,
                b.constant("start", np.array([p * fan_out], np.int64)),
                b.constant("end", np.array([(p + 1) * fan_out], np.int64)),
                axis,
            ],
        )
        for p in range(pieces)
    ]
    return b.op("Max", blocks, out)


def _emit(b: _Builder, x: str, spec: _Spec, names: dict[str, str]) -> None:
    """Writes the graph of ``spec`` from input ``x`` (already in ``spec.dtype``) into ``b``;
    ``names`` maps each of ``spec.head.outputs`` to the name its value must have."""
    casts: list[tuple[str, str]] = []

    def out(role: str) -> str | None:
        """Where the float output ``role`` is written (cast to ``out_dtype`` afterwards)."""
        if role not in names or spec.float_dtype() == spec.dtype:
            return names.get(role)
        casts.append((b.fresh(role), names[role]))
        return casts[-1][0]

    z = x
    last = len(spec.layers) - 1
    for i, layer in enumerate(spec.layers):
        if isinstance(layer, _Affine):
            z = _affine(b, z, layer, spec.dtype, out("scores") if i == last else None)
        elif isinstance(layer, _Norm):
            scale = b.constant("scale", layer.scale.astype(spec.dtype))
            shift = b.constant("shift", layer.shift.astype(spec.dtype))
            z = b.op("Add", [b.op("Mul", [z, scale]), shift])
        else:
            z = _activation(b, z, layer, spec.dtype)
    head = spec.head
    if head.rule == "value":
        b.op(_OUT_ONNX[head.activation], [z], out("variable"))
    else:
        if "probabilities" in names:
            _probabilities(b, z, spec, out("probabilities"))
        _label(b, z, spec, names["label"])
    for value, name in casts:
        b.op("Cast", [value], name, to=_tensor_type(spec.float_dtype()))


def _probabilities(b: _Builder, z: str, spec: _Spec, out: str) -> None:
    if spec.head.rule == "threshold" and spec.n_outputs == 1:
        # One logistic output: the probabilities of the two classes, [1 - p, p].
        p = b.op("Sigmoid", [z])
        one = b.constant("one", np.ones((), spec.dtype))
        b.op("Concat", [b.op("Sub", [one, p]), p], out, axis=1)
    elif spec.head.activation == "softmax":
        b.op("Softmax", [z], out, axis=1)
    else:
        b.op(_OUT_ONNX[spec.head.activation], [z], out)


def _label(b: _Builder, z: str, spec: _Spec, label: str) -> None:
    classes = spec.head.classes
    mapped = classes is not None
    int64 = _tensor_type(np.dtype(np.int64))
    if spec.head.rule == "argmax":
        index = b.op("ArgMax", [z], None if mapped else label, axis=1, keepdims=0)
    else:
        # mlpfast's rule is on the score (z > 0), not on a rounded probability (p > 0.5).
        positive = b.op("Greater", [z, b.constant("zero", np.zeros((), spec.dtype))])
        if spec.n_outputs > 1:  # multilabel: the 0/1 indicator matrix
            b.op("Cast", [positive], label, to=int64)
            return
        flat = b.op("Reshape", [positive, b.constant("shape", np.array([-1], np.int64))])
        index = b.op("Cast", [flat], None if mapped else label, to=int64)
    if mapped:
        b.op("Gather", [b.constant("classes", classes), index], label, axis=0)


def _tensor_type(dtype: np.dtype) -> int:
    """ONNX's element type of ``dtype`` (object: strings)."""
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# --------------------------------------------------------------------------- public API
def to_onnx(model: Any, path: str | os.PathLike | None = None):
    """The ONNX model computing ``model``'s predictions.

    Parameters
    ----------
    model : MLP, mlpfast.sklearn.MLPClassifier or mlpfast.sklearn.MLPRegressor
        The model; an estimator must be fitted.
    path : str or os.PathLike, optional
        Where to write the model (the ``.onnx`` file), in addition to returning it.

    Returns
    -------
    onnx.ModelProto
        One input ``X`` of shape [N, n_features] in the model's dtype (float32 or float64),
        and these outputs:

        * an ``MLP`` with a classification loss: ``label`` (int64, what ``predict``
          returns: class indices, or for ``bce`` 0/1 of shape [N] with one output and
          [N, outputs] with several), ``probabilities`` (what ``predict_proba`` returns;
          not for ``svm``) and ``scores`` (what ``decision_function`` returns);
        * an ``MLP`` with a regression loss: ``variable`` [N, outputs], what ``predict``
          returns (for ``poisson``, e^output);
        * ``MLPClassifier``: ``label`` (``predict``: the ``classes_`` as int64 or strings, or
          the 0/1 matrix of a multilabel model) and ``probabilities`` (``predict_proba``; for
          ``loss="hinge"`` the class scores);
        * ``MLPRegressor``: ``variable`` [N, n_outputs], ``predict`` (in the model's dtype).

        The names are skl2onnx's, whose converters for these estimators ``import
        mlpfast.sklearn`` registers.

    Raises
    ------
    ImportError
        When onnx is not installed.
    TypeError
        When ``model`` is not one of those models, or ``path`` not a path.
    sklearn.exceptions.NotFittedError
        When an estimator is not fitted.
    """
    onnx = _import_onnx()
    from onnx import helper

    if path is not None and not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"to_onnx: expected path to be a str or os.PathLike, got {path!r}")
    spec = _spec(model)
    types = spec.output_types()
    b = _ProtoBuilder(reserved=["X"] + [name for name, _, _ in types])
    _emit(b, "X", spec, {name: name for name, _, _ in types})

    def info(name: str, dtype: np.dtype, shape: list):
        dims = ["N" if d is None else d for d in shape]
        return helper.make_tensor_value_info(name, _tensor_type(dtype), dims)

    graph = helper.make_graph(
        b.nodes,
        "mlpfast",
        [info("X", spec.dtype, [None, spec.n_features])],
        [info(*t) for t in types],
        b.initializers,
    )
    proto = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        ir_version=IR_VERSION,
        producer_name="mlpfast",
        producer_version=__version__,
        doc_string=repr(model),
    )
    onnx.checker.check_model(proto)
    if path is not None:
        onnx.save_model(proto, os.fspath(path))
    return proto
