"""``MLPRegressor``: mlpfast's drop-in for scikit-learn's multilayer perceptron regressor."""

from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.utils.metaestimators import available_if

from ._base import (
    _ATTRIBUTES_DOC,
    _PARAMS_DOC,
    _BaseMLP,
    _dtype_name,
    _has_partial_fit,
    _unchanged_on_refusal,
)


# --------------------------------------------------------------------------- regressor
class MLPRegressor(RegressorMixin, _BaseMLP):
    """Multilayer perceptron regressor trained by mlpfast; scikit-learn's drop-in.

    By default it minimizes scikit-learn's squared error: half the squared error summed over
    the outputs and averaged over the rows, plus the L2 term. Like scikit-learn, ``loss_``
    and ``loss_curve_`` report that data term divided by the number of outputs, plus the L2
    term (and ``tol`` applies to that figure).
    """

    __doc__ = (
        (__doc__ or "")
        + """
    Parameters
    ----------
    loss : {"squared_error", "poisson", "huber", "absolute_error"}, default="squared_error"
        The training loss. "squared_error" and "poisson" are scikit-learn's: half the squared
        error, and half the Poisson deviance (summed over the outputs, averaged over the rows)
        with a log link — the network's outputs are log means, ``predict`` returns their
        exponential (``out_activation_`` is "exp") and the targets must be >= 0. "huber"
        (threshold 1) and "absolute_error" are mlpfast's additions for robust regression:
        PyTorch's ``HuberLoss`` and ``L1Loss``, averaged over every output of every row.
"""
        + _PARAMS_DOC.split("----------\n", 1)[1]
        + """    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of all computation. mlpfast's addition.
    dropout : float, default=0.0
        Inverted dropout's rate after every hidden activation while fitting, in [0, 1) (its
        masks follow ``random_state``); predictions never drop. mlpfast's addition.
    batch_norm : bool, default=False
        Batch normalization after every hidden layer (before its activation; after a maxout
        layer, of its output), as PyTorch's ``BatchNorm1d`` (momentum 0.1, eps 1e-5):
        fitting normalizes by each minibatch's statistics, predictions by the running
        ones. Not with ``solver="lbfgs"``. mlpfast's addition.
"""
        + _ATTRIBUTES_DOC
        + """
    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from mlpfast.sklearn import MLPRegressor
    >>> X, y = make_regression(n_samples=200, n_features=5, noise=0.1, random_state=0)
    >>> reg = MLPRegressor(hidden_layer_sizes=(64,), learning_rate_init=0.01, max_iter=500,
    ...                    random_state=0).fit(X, y)
    >>> reg.score(X, y) > 0.9
    True
"""
    )

    _loss_options = ("squared_error", "poisson", "huber", "absolute_error")
    # The native loss of each, and the output activation predict applies.
    _NATIVE: ClassVar[dict[str, tuple[str, str]]] = {
        "squared_error": ("half_squared_error", "identity"),
        "poisson": ("half_poisson_deviance", "exp"),
        "huber": ("huber", "identity"),
        "absolute_error": ("mae", "identity"),
    }
    _metric = "val_r2"

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dtype="float32",
        dropout=0.0,
        batch_norm=False,
    ):
        self.loss = loss
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.n_iter_no_change = n_iter_no_change
        self.max_fun = max_fun
        self.dtype = dtype
        self.dropout = dropout
        self.batch_norm = batch_norm

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._check_xy(X, y, reset, y_numeric=True)
        dtype = np.dtype(_dtype_name(self.dtype))
        Y = y.reshape(-1, 1) if y.ndim == 1 else y
        with np.errstate(over="ignore"):  # beyond the dtype's range: refused by the fit
            return X, np.ascontiguousarray(Y, dtype=dtype)

    def _native_loss(self) -> str:
        return self._NATIVE[self.loss][0]

    def _out_activation(self) -> str:
        return self._NATIVE[self.loss][1]

    def _loss_scale(self) -> float:
        # scikit-learn reports its squared error averaged over the outputs (not its gradient).
        if self.loss == "squared_error":
            return 1.0 / self._mlp.layer_sizes[-1]
        return 1.0

    # ---- API
    @_unchanged_on_refusal
    def fit(self, X, y, sample_weight=None, *, callbacks: Callable | list | None = None):
        """Fits the network to data matrix X and targets y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (sparse matrices are densified).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples (finite, >= 0, not all zero): every batch's loss is the
            weighted mean over its rows, as scikit-learn's.
        callbacks : callable or list of callables, optional
            Called after every epoch with a dict of its figures ("epoch", "epochs", "loss",
            "val_loss" and "val_r2" with early stopping, "lr", "elapsed",
            "samples_per_second", "remaining"); one returning exactly False stops training.

        Returns
        -------
        self : MLPRegressor
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False, callbacks=callbacks, sample_weight=sample_weight)

    @available_if(_has_partial_fit)
    @_unchanged_on_refusal
    def partial_fit(self, X, y, sample_weight=None):
        """Trains for one epoch on (X, y), continuing the network and its optimizer.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The targets.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, as in ``fit``.

        Returns
        -------
        self : MLPRegressor
            The updated estimator.
        """
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predicts the targets.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predictions, as float64 (computed in the estimator's dtype).
        """
        pred = self._native("predict", X).astype(np.float64, copy=False)
        return pred.ravel() if pred.shape[1] == 1 else pred

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
