"""skl2onnx converters for ``MLPClassifier`` and ``MLPRegressor``, registered by :func:`register`.

With them ``skl2onnx.to_onnx`` and ``convert_sklearn`` convert pipelines holding mlpfast's
estimators. The graph is :mod:`mlpfast._onnx`'s (the one :func:`mlpfast.to_onnx` writes),
added to skl2onnx's container through :class:`_ContainerBuilder`. Classifiers declare
skl2onnx's ``zipmap``, ``output_class_labels`` and ``nocl`` options, so skl2onnx's own classifier
parser adds the ZipMap (the default) as it does for scikit-learn's ``MLPClassifier``;
``options={"zipmap": False}`` keeps the ``label`` and ``probabilities`` tensors.
"""

from __future__ import annotations

import numpy as np

from mlpfast import _onnx

from ._classifier import MLPClassifier
from ._regressor import MLPRegressor


class _ContainerBuilder(_onnx._Builder):
    """Adds the nodes and initializers to a skl2onnx container, named by its scope."""

    def __init__(self, scope, container):
        self.scope = scope
        self.container = container

    def fresh(self, hint: str) -> str:
        return self.scope.get_unique_variable_name(hint)

    def constant(self, hint: str, value: np.ndarray) -> str:
        from onnx import TensorProto, numpy_helper

        name = self.fresh(hint)
        value = np.asarray(value)
        if value.dtype == object:  # string labels: the container copies raw data only
            content = [str(v).encode("utf-8") for v in value.ravel()]
            self.container.add_initializer(name, TensorProto.STRING, list(value.shape), content)
        else:
            tensor = numpy_helper.from_array(value, name)
            self.container.add_initializer(name, tensor.data_type, list(value.shape), tensor)
        return name

    def add(self, op: str, inputs: list[str], outputs: list[str], attrs: dict) -> None:
        self.container.add_node(
            op, inputs, outputs, name=self.scope.get_unique_operator_name(op), **attrs
        )


def _variable_type(dtype: np.dtype, shape: list):
    """skl2onnx's type of a tensor variable of ``dtype`` (object: strings)."""
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        StringTensorType,
    )

    types = {"f4": FloatTensorType, "f8": DoubleTensorType, "i8": Int64TensorType}
    return types.get(np.dtype(dtype).str[1:], StringTensorType)(shape=shape)


def _spec(operator) -> _onnx._Spec:
    """What is exported of the operator's estimator: :func:`mlpfast.to_onnx`'s graph, with
    the float outputs in the pipeline's float type (float64 for a double input, float32
    otherwise, as skl2onnx's own converters give them), and the class indices as labels
    under skl2onnx's option ``nocl`` (no class labels)."""
    from skl2onnx.common.data_types import DoubleTensorType

    est, scope = operator.raw_operator, operator.scope_inst
    spec = _onnx._spec(est)
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    spec = spec._replace(out_dtype=np.dtype(np.float64 if double else np.float32))
    if isinstance(est, MLPClassifier) and scope.get_options(est, {"nocl": False})["nocl"]:
        spec = spec._replace(head=spec.head._replace(classes=None))
    return spec


def _shapes(operator) -> None:
    """skl2onnx's shape calculator: the outputs' types, as :func:`mlpfast.to_onnx` has them."""
    est = operator.raw_operator
    spec = _spec(operator)
    if (
        isinstance(est, MLPClassifier)
        and spec.float_dtype() == np.float64
        and operator.scope_inst.get_options(est, {"zipmap": True})["zipmap"]
    ):
        # skl2onnx would write a graph onnxruntime refuses (as it does for its own
        # classifiers on double inputs): say so now, and what to do.
        raise ValueError(
            "skl2onnx: ONNX's ZipMap (skl2onnx's default for classifiers) takes float32 "
            "probabilities, and this MLPClassifier's input is double (float64); convert "
            "it with options={MLPClassifier: {'zipmap': False}}, or with a float32 input"
        )
    rows = operator.inputs[0].get_first_dimension()
    types = spec.output_types()
    if len(operator.outputs) != len(types):
        raise RuntimeError(
            f"{type(est).__name__}'s ONNX graph has the outputs "
            f"{[name for name, _, _ in types]}, skl2onnx declared {len(operator.outputs)}"
        )
    for variable, (_, dtype, shape) in zip(operator.outputs, types):
        variable.type = _variable_type(dtype, [rows, *shape[1:]])


def _convert(scope, operator, container) -> None:
    """skl2onnx's converter: :mod:`mlpfast._onnx`'s graph on the operator's input."""
    from skl2onnx.common.data_types import guess_proto_type

    spec = _spec(operator)
    b = _ContainerBuilder(scope, container)
    x = operator.inputs[0].full_name
    if guess_proto_type(operator.inputs[0].type) != _onnx._tensor_type(spec.dtype):
        # The model computes in its dtype, as its predict converts its input once.
        x = b.op("Cast", [x], to=_onnx._tensor_type(spec.dtype))
    names = {name: var.full_name for name, var in zip(spec.head.outputs, operator.outputs)}
    _onnx._emit(b, x, spec, names)


def register() -> None:
    """Registers the converters with skl2onnx (which must be importable)."""
    from skl2onnx import update_registered_converter

    update_registered_converter(
        MLPClassifier,
        "MlpfastMLPClassifier",
        _shapes,
        _convert,
        options={
            "zipmap": [True, False, "columns"],
            "output_class_labels": [False, True],
            "nocl": [False, True],
        },
    )
    update_registered_converter(MLPRegressor, "MlpfastMLPRegressor", _shapes, _convert)
