"""mlpfast: dense multilayer perceptrons whose forward, backward and training run in Rust.

Two levels, as the backpropagation lecture teaches them:

* layers as gates: ``Linear``, ``Maxout`` and the activations each have ``forward`` (keeping
  what backward needs) and ``backward`` (the chain rule), and the losses return
  ``(loss, gradient)``;
* ``MLP``: a stack of those layers whose ``fit`` hands a whole training run to Rust.

``mlpfast.gradcheck`` checks every analytic gradient against centered differences.
"""

from mlpfast import gradcheck
from mlpfast._core import (
    ELU,
    MLP,
    Activation,
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

__all__ = [
    "ELU",
    "MLP",
    "Activation",
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
    "mse_loss",
    "set_num_threads",
    "softmax_loss",
    "svm_loss",
]
