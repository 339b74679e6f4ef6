"""Type stubs of mlpfast's native module (the Rust core, built by maturin)."""

from collections.abc import Callable, Sequence
from typing import Any, Literal, final

import numpy as np
from numpy.typing import ArrayLike, NDArray
from typing_extensions import Self, disjoint_base

__version__: str
__all__ = [
    "ACTIVATIONS",
    "ELU",
    "LOSSES",
    "MAXOUT_PIECES",
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
    "_check_fit_settings",
    "_fit_defaults",
    "_gemm_seconds",
    "_simd_level",
    "_thread_info",
    "bce_loss",
    "get_num_threads",
    "mse_loss",
    "set_num_threads",
    "softmax_loss",
    "svm_loss",
]

_DTypeLike = Literal["float32", "float64"] | type[np.float32] | type[np.float64] | np.dtype[Any]
_FloatArray = NDArray[np.float32] | NDArray[np.float64]

@final
class Linear:
    """Fully-connected layer: ``y = x @ weight + bias``.

    ``forward`` keeps a reference to its input for ``backward``; ``backward`` fills
    ``grad_weight`` and ``grad_bias`` and returns the gradient with respect to the input.
    ``weight`` and ``bias`` are live views of the layer's memory: writing into them changes
    the layer; assigning to them copies the new values in (shape checked).
    """

    def __new__(
        cls,
        in_features: int,
        out_features: int,
        *,
        dtype: _DTypeLike = "float32",
        seed: int | None = None,
    ) -> Self: ...
    in_features: int
    out_features: int
    dtype: str
    weight: _FloatArray
    bias: _FloatArray
    @property
    def grad_weight(self) -> _FloatArray: ...
    @property
    def grad_bias(self) -> _FloatArray: ...
    def forward(self, x: ArrayLike) -> _FloatArray: ...
    def backward(self, dout: ArrayLike) -> _FloatArray: ...
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...

@final
class Maxout:
    """Maxout layer: ``y = max_p (x @ weight[p] + bias[p])`` over ``pieces`` affine maps."""

    def __new__(
        cls,
        in_features: int,
        out_features: int,
        pieces: int = 2,
        *,
        dtype: _DTypeLike = "float32",
        seed: int | None = None,
    ) -> Self: ...
    in_features: int
    out_features: int
    pieces: int
    dtype: str
    weight: _FloatArray
    bias: _FloatArray
    @property
    def grad_weight(self) -> _FloatArray: ...
    @property
    def grad_bias(self) -> _FloatArray: ...
    def forward(self, x: ArrayLike) -> _FloatArray: ...
    def backward(self, dout: ArrayLike) -> _FloatArray: ...
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...

@disjoint_base
class Activation:
    """Base of the elementwise activations: no parameters, any 2-D input, in its dtype."""

    @property
    def name(self) -> str: ...
    def forward(self, x: ArrayLike) -> _FloatArray: ...
    def backward(self, dout: ArrayLike) -> _FloatArray: ...
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...

@final
class Identity(Activation):
    def __new__(cls) -> Self: ...

@final
class Sigmoid(Activation):
    def __new__(cls) -> Self: ...

@final
class Tanh(Activation):
    def __new__(cls) -> Self: ...

@final
class ReLU(Activation):
    def __new__(cls) -> Self: ...

@final
class LeakyReLU(Activation):
    def __new__(cls, alpha: float = 0.01) -> Self: ...
    @property
    def alpha(self) -> float: ...

@final
class ELU(Activation):
    def __new__(cls, alpha: float = 1.0) -> Self: ...
    @property
    def alpha(self) -> float: ...

@final
class Dropout:
    """Inverted dropout: in training mode, zeroes each unit with probability ``p`` and scales
    the others by ``1 / (1 - p)``; in evaluation mode, the identity. ``p`` is in [0, 1).

    Each training forward applies mask number ``step`` of the sequence ``seed`` fixes (a hash
    of seed, step, row and column) and advances ``step``; ``backward`` applies the last
    forward's mask again. Computes in its input's dtype (float32 stays float32).
    """

    def __new__(cls, p: float = 0.5, *, seed: int | None = None) -> Self: ...
    @property
    def p(self) -> float: ...
    @property
    def seed(self) -> int: ...
    step: int
    def forward(self, x: ArrayLike) -> _FloatArray: ...
    def backward(self, dout: ArrayLike) -> _FloatArray: ...
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...

@final
class BatchNorm:
    """Batch normalization over the features of (N, features) inputs (PyTorch's BatchNorm1d).

    Training mode normalizes by the batch's mean and biased variance (N >= 2) and moves
    ``running_mean`` / ``running_var`` (unbiased) towards them by ``momentum``; evaluation
    mode normalizes by the running statistics. ``weight`` (gamma), ``bias`` (beta) and the
    running statistics are live views of the layer's memory; assigning copies values in.
    """

    def __new__(
        cls,
        features: int,
        *,
        momentum: float = 0.1,
        eps: float = 1e-05,
        dtype: _DTypeLike = "float32",
    ) -> Self: ...
    @property
    def features(self) -> int: ...
    @property
    def num_features(self) -> int: ...
    @property
    def momentum(self) -> float: ...
    @property
    def eps(self) -> float: ...
    @property
    def dtype(self) -> str: ...
    weight: _FloatArray
    bias: _FloatArray
    running_mean: _FloatArray
    running_var: _FloatArray
    @property
    def grad_weight(self) -> _FloatArray: ...
    @property
    def grad_bias(self) -> _FloatArray: ...
    def forward(self, x: ArrayLike) -> _FloatArray: ...
    def backward(self, dout: ArrayLike) -> _FloatArray: ...
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...

def softmax_loss(scores: ArrayLike, y: ArrayLike) -> tuple[float, _FloatArray]: ...
def svm_loss(scores: ArrayLike, y: ArrayLike, margin: float = 1.0) -> tuple[float, _FloatArray]: ...
def mse_loss(pred: ArrayLike, target: ArrayLike) -> tuple[float, _FloatArray]: ...
def bce_loss(logits: ArrayLike, y: ArrayLike) -> tuple[float, _FloatArray]: ...

@final
class MLP:
    """A multilayer perceptron built from ``Linear`` (or ``Maxout``) and activation layers,
    with ``BatchNorm`` and ``Dropout`` layers when asked for."""

    def __new__(
        cls,
        layer_sizes: Sequence[int],
        *,
        activation: str = "relu",
        loss: str = "softmax",
        dtype: _DTypeLike = "float32",
        seed: int | None = None,
        dropout: float = 0.0,
        batch_norm: bool = False,
    ) -> Self: ...
    @property
    def dropout(self) -> float: ...
    @property
    def batch_norm(self) -> bool: ...
    @property
    def layers(self) -> list[Linear | Maxout | BatchNorm | Activation | Dropout]: ...
    @property
    def training(self) -> bool: ...
    def train(self, mode: bool = True) -> Self: ...
    def eval(self) -> Self: ...
    @property
    def layer_sizes(self) -> list[int]: ...
    @property
    def activation(self) -> str: ...
    @property
    def loss_name(self) -> str: ...
    @property
    def dtype(self) -> str: ...
    def forward(self, X: ArrayLike) -> _FloatArray: ...
    def backward(self, dscores: ArrayLike) -> _FloatArray: ...
    def loss(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        weight_decay: float = 0.0,
        sample_weight: ArrayLike | None = None,
    ) -> tuple[float, list[tuple[_FloatArray, _FloatArray]]]: ...
    def l2_penalty(self, weight_decay: float) -> float: ...
    @property
    def param_layers(self) -> list[Linear | Maxout | BatchNorm]: ...
    def _params(
        self,
    ) -> list[
        tuple[_FloatArray, _FloatArray] | tuple[_FloatArray, _FloatArray, _FloatArray, _FloatArray]
    ]: ...
    @property
    def history(self) -> dict[str, list[float]]: ...
    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        *,
        sample_weight: ArrayLike | None = None,
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
        validation_data: tuple[ArrayLike, ArrayLike]
        | tuple[ArrayLike, ArrayLike, ArrayLike | None]
        | None = None,
        verbose: bool = False,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        alpha: float = 0.99,
        clip_grad_norm: float | None = None,
        callbacks: Callable[[dict[str, Any]], bool | None]
        | Sequence[Callable[[dict[str, Any]], bool | None]]
        | None = None,
        schedule: Literal["constant", "invscaling", "adaptive", "cosine"] = "constant",
        power_t: float = 0.5,
        lr_min: float = 0.0,
        warmup_epochs: int = 0,
        tol: float = 1e-4,
        n_iter_no_change: int | None = None,
        resume: bool = False,
    ) -> dict[str, list[float]]: ...
    def _session_state(self) -> bytes: ...
    def _set_session_state(self, state: bytes) -> None: ...
    @property
    def samples_seen(self) -> int: ...
    @property
    def learning_rate(self) -> float | None: ...
    @learning_rate.setter
    def learning_rate(self, value: float) -> None: ...
    @property
    def stopped_early(self) -> bool: ...
    def predict(self, X: ArrayLike) -> NDArray[np.int64] | _FloatArray: ...
    def decision_function(self, X: ArrayLike) -> _FloatArray: ...
    def predict_proba(self, X: ArrayLike) -> _FloatArray: ...
    def score(
        self, X: ArrayLike, y: ArrayLike, *, sample_weight: ArrayLike | None = None
    ) -> float: ...

ACTIVATIONS: list[str]
LOSSES: list[str]
MAXOUT_PIECES: int

def _check_fit_settings(settings: dict[str, Any], dtype: str) -> None: ...
def _fit_defaults() -> dict[str, Any]: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def _thread_info() -> tuple[str, int]: ...
def _simd_level() -> tuple[str, str]: ...
def _gemm_seconds(
    m: int, k: int, n: int, ta: bool, tb: bool, dtype: str | type, reps: int
) -> float: ...
