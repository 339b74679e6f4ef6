"""mlpfast: dense multilayer perceptrons whose forward, backward and training run in Rust.

Two levels, as the backpropagation lecture teaches them:

* layers as gates: ``Linear``, ``Maxout``, ``BatchNorm``, ``Dropout`` and the activations
  each have ``forward`` (keeping what backward needs) and ``backward`` (the chain rule), and
  ``train()`` / ``eval()`` (only BatchNorm and Dropout compute differently in evaluation
  mode); the losses return ``(loss, gradient)``;
* ``MLP``: a stack of those layers whose ``fit`` hands a whole training run to Rust.

``mlpfast.gradcheck`` checks every analytic gradient against centered differences.
``mlpfast.sklearn`` holds scikit-learn's ``MLPClassifier`` and ``MLPRegressor`` as drop-ins
(it needs scikit-learn; this package does not). ``save`` / ``load`` write and read safe model
files (safetensors), ``to_onnx`` exports a model to ONNX (with onnx), ``plot_history``
draws training curves (with matplotlib), and the native objects pickle.
"""

from mlpfast import _pickle as _pickle  # registers the native objects' pickle reducers
from mlpfast import gradcheck
from mlpfast._core import (
    ELU,
    MLP,
    Activation,
    BatchNorm,
    Dropout,
    Identity,
    LeakyReLU,
    Linear,
    Maxout,
    ReLU,
    Sigmoid,
    Tanh,
    __version__,
    bce_loss,
    get_num_threads,
    mse_loss,
    set_num_threads,
    softmax_loss,
    svm_loss,
)
from mlpfast._onnx import to_onnx
from mlpfast._plot import plot_history
from mlpfast._threadpool import register as _register_with_threadpoolctl
from mlpfast.io import load, save

_register_with_threadpoolctl()

__all__ = [
    "ELU",
    "MLP",
    "Activation",
    "BatchNorm",
    "Dropout",
    "Identity",
    "LeakyReLU",
    "Linear",
    "Maxout",
    "ReLU",
    "Sigmoid",
    "Tanh",
    "__version__",
    "bce_loss",
    "get_num_threads",
    "gradcheck",
    "load",
    "mse_loss",
    "plot_history",
    "save",
    "set_num_threads",
    "softmax_loss",
    "svm_loss",
    "to_onnx",
]
