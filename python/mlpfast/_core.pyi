"""Type stubs of mlpfast's native module (the Rust core, built by maturin)."""

from typing import Any, Literal, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

__version__: str

DTypeLike = Literal["float32", "float64"] | type[np.float32] | type[np.float64] | np.dtype[Any]
FloatArray = NDArray[np.float32] | NDArray[np.float64]

class Linear:
    """Fully-connected layer: ``y = x @ weight + bias``.

    ``forward`` keeps a reference to its input for ``backward``; ``backward`` fills
    ``grad_weight`` and ``grad_bias`` and returns the gradient with respect to the input.
    ``weight`` and ``bias`` are live views of the layer's memory: writing into them changes
    the layer; assigning to them copies the new values in (shape checked).
    """

    def __init__(
        self, in_features: int, out_features: int, *, dtype: DTypeLike = "float32", seed: int | None = None
    ) -> None: ...
    in_features: int
    out_features: int
    dtype: str
    weight: FloatArray
    bias: FloatArray
    @property
    def grad_weight(self) -> FloatArray: ...
    @property
    def grad_bias(self) -> FloatArray: ...
    def forward(self, x: ArrayLike) -> FloatArray: ...
    def backward(self, dout: ArrayLike) -> FloatArray: ...

class Maxout:
    """Maxout layer: ``y = max_p (x @ weight[p] + bias[p])`` over ``pieces`` affine maps."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        pieces: int = 2,
        *,
        dtype: DTypeLike = "float32",
        seed: int | None = None,
    ) -> None: ...
    in_features: int
    out_features: int
    pieces: int
    dtype: str
    weight: FloatArray
    bias: FloatArray
    @property
    def grad_weight(self) -> FloatArray: ...
    @property
    def grad_bias(self) -> FloatArray: ...
    def forward(self, x: ArrayLike) -> FloatArray: ...
    def backward(self, dout: ArrayLike) -> FloatArray: ...

class Activation:
    """Base of the elementwise activations: no parameters, any 2-D input, in its dtype."""

    @property
    def name(self) -> str: ...
    def forward(self, x: ArrayLike) -> FloatArray: ...
    def backward(self, dout: ArrayLike) -> FloatArray: ...

class Identity(Activation):
    def __init__(self) -> None: ...

class Sigmoid(Activation):
    def __init__(self) -> None: ...

class Tanh(Activation):
    def __init__(self) -> None: ...

class ReLU(Activation):
    def __init__(self) -> None: ...

class LeakyReLU(Activation):
    def __init__(self, alpha: float = 0.01) -> None: ...
    @property
    def alpha(self) -> float: ...

class ELU(Activation):
    def __init__(self, alpha: float = 1.0) -> None: ...
    @property
    def alpha(self) -> float: ...

def softmax_loss(scores: ArrayLike, y: ArrayLike) -> tuple[float, FloatArray]: ...
def svm_loss(scores: ArrayLike, y: ArrayLike, margin: float = 1.0) -> tuple[float, FloatArray]: ...
def mse_loss(pred: ArrayLike, target: ArrayLike) -> tuple[float, FloatArray]: ...
def bce_loss(logits: ArrayLike, y: ArrayLike) -> tuple[float, FloatArray]: ...

class MLP:
    """A multilayer perceptron built from ``Linear`` (or ``Maxout``) and activation layers."""

    def __init__(
        self,
        layer_sizes: Sequence[int],
        *,
        activation: str = "relu",
        loss: str = "softmax",
        dtype: DTypeLike = "float32",
        seed: int | None = None,
    ) -> None: ...
    @property
    def layers(self) -> list[Linear | Maxout | Activation]: ...
    @property
    def layer_sizes(self) -> list[int]: ...
    @property
    def activation(self) -> str: ...
    @property
    def loss_name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    def forward(self, X: ArrayLike) -> FloatArray: ...
    def backward(self, dscores: ArrayLike) -> FloatArray: ...
    def loss(self, X: ArrayLike, y: ArrayLike) -> tuple[float, list[tuple[FloatArray, FloatArray]]]: ...
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        epochs: int = 10,
        batch_size: int = 64,
        optimizer: str = "sgd",
        lr: float = 0.01,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        lr_decay: float = 1.0,
        shuffle: bool = True,
        seed: int | None = None,
        validation_data: tuple[ArrayLike, ArrayLike] | None = None,
        verbose: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ) -> dict[str, list[float]]: ...
    def predict(self, X: ArrayLike) -> NDArray[np.int64] | FloatArray: ...
    def predict_proba(self, X: ArrayLike) -> FloatArray: ...
    def score(self, X: ArrayLike, y: ArrayLike) -> float: ...

def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
