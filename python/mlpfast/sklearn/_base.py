"""The shared machinery of mlpfast's scikit-learn estimators: validation of parameters and
data, the epoch listener, and ``_BaseMLP`` (initialization, the stochastic and lbfgs fits,
safe-file state).
"""

from __future__ import annotations

import functools
import numbers
import re
import warnings
from typing import Any, Callable, TypeVar

import numpy as np
import scipy.sparse
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state, column_or_1d
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from mlpfast import _modelfile
from mlpfast._core import MLP, BatchNorm, _check_fit_settings
from mlpfast._fields import shown
from mlpfast._progress import Progress
from mlpfast.sklearn._files import metadata

# scikit-learn's activation names (and mlpfast's extras) -> MLP's.
_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "elu",
    "maxout": "maxout",
}
_SOLVERS = ("sgd", "adam", "adamw", "rmsprop", "lbfgs")
_SCHEDULES = ("constant", "invscaling", "adaptive")
_DTYPES = ("float32", "float64")
# The spellings numpy has for float32 and float64: "float32", "f4", "<f8", "double", ...
_DTYPE_SPELLING = re.compile(r"[<>=|]?(f|d|float|single|double)[0-9]*")
# The real-valued training parameters, by the core fit keyword each one sets: their types
# are checked here, their ranges by the core (MLP.fit's check), and they reach MLP.fit as
# those keywords. A new one is a line here besides the estimators' signatures and docs.
_REAL_SETTINGS = {
    "weight_decay": "alpha",
    "lr": "learning_rate_init",
    "momentum": "momentum",
    "eps": "epsilon",
    "power_t": "power_t",
    "tol": "tol",
}
# The parameters behind the other core keywords, to name them in the core's errors.
_OTHER_SETTINGS = {
    "epochs": "max_iter",
    "beta1": "beta_1",
    "beta2": "beta_2",
    "schedule": "learning_rate",
    "batch_size": "batch_size",
    "n_iter_no_change": "n_iter_no_change",
}


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _unchanged_on_refusal(method: _Method) -> _Method:
    """A fit or partial_fit that raises leaves the estimator as it was before the call.

    Some checks can only run after attributes are set (the classes of a first partial_fit,
    the validation split, the data's range in the network's dtype): on any error the
    attributes are put back, so a refused call neither loses a fitted network nor makes an
    unfitted estimator look fitted. A fit that trained and diverged is the exception: it
    keeps the weights of its last finite step, as its error (whose cause is the network's
    FloatingPointError) says.
    """

    # Warnings raised inside count this wrapper's frame: stacklevel=5 reaches the caller of
    # fit from _fit_stochastic (fit → guarded → _fit → _fit_stochastic → warn).
    @functools.wraps(method)
    def guarded(self, *args, **kwargs):
        saved = {k: v.copy() if isinstance(v, (list, dict)) else v for k, v in vars(self).items()}
        try:
            return method(self, *args, **kwargs)
        except BaseException as exc:
            if not isinstance(exc.__cause__, FloatingPointError):
                vars(self).clear()
                vars(self).update(saved)
            raise

    return guarded  # type: ignore[return-value]


# --------------------------------------------------------------------------- validation
def _is_int(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _is_real(v: Any) -> bool:
    if not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)):
        return False
    try:
        float(v)  # what the checks and the core make of it
    except OverflowError:  # an int beyond float's range
        return False
    return True


def _bad(name: str, expected: str, value: Any) -> ValueError:
    return ValueError(f"The '{name}' parameter must be {expected}. Got {value!r} instead.")


def _check_real(est: Any, name: str, lo: float, hi: float, lo_open=False, hi_open=False):
    v = getattr(est, name)
    ok = _is_real(v) and not np.isnan(v)
    if ok:
        ok = (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        raise _bad(name, f"a float in the range {left}{lo}, {hi}{right}", v)


def _check_choice(est: Any, name: str, options: tuple[str, ...]):
    v = getattr(est, name)
    if not isinstance(v, str) or v not in options:
        raise _bad(name, "a str among " + ", ".join(repr(o) for o in options), v)


def _dtype_name(dtype: Any) -> str:
    """``"float32"`` or ``"float64"`` for any spelling of those dtypes."""
    name = None
    # Only what can spell a float dtype reaches numpy's parser: given a structured spec
    # ("f4,(", a list of fields) it evaluates subarray shapes and raises SyntaxError,
    # RecursionError or KeyError as well as TypeError and ValueError, and some names warn.
    if isinstance(dtype, np.dtype):
        name = dtype.name
    elif (
        dtype is None  # numpy's default, float64
        or (isinstance(dtype, type) and issubclass(dtype, (np.generic, float)))
        or (isinstance(dtype, str) and _DTYPE_SPELLING.fullmatch(dtype))
    ):
        try:
            name = np.dtype(dtype).name
        except TypeError:  # a name numpy does not know
            pass
    if name not in _DTYPES:
        raise _bad("dtype", "'float32' or 'float64'", dtype)
    return name


def _hidden_sizes(value: Any) -> list[int]:
    sizes = [value] if _is_int(value) else value
    try:
        sizes = list(sizes)
    except TypeError:
        raise _bad("hidden_layer_sizes", "an int or a sequence of ints", value) from None
    if not all(_is_int(s) for s in sizes):
        raise _bad("hidden_layer_sizes", "an int or a sequence of ints", value)
    if any(s <= 0 for s in sizes):
        raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
    return [int(s) for s in sizes]


def _dense(X):
    """Sparse matrices densified (mlpfast computes on dense arrays)."""
    return X.toarray() if scipy.sparse.issparse(X) else X


# --------------------------------------------------------------------------- epoch listener
class _EpochListener:
    """The one callback the estimators give ``MLP.fit``.

    It gives the estimator as ``info["model"]`` (the figures are on scikit-learn's scale
    already: see ``_reported_data_scale``), prints the progress
    line when verbose, and calls the user's callbacks with those figures; one returning
    exactly ``False`` stops training. (The fitted curves come from the network's session
    afterwards, not from here.)
    """

    def __init__(self, est, epochs: int, verbose: bool, callbacks):
        self.est = est
        self.progress = Progress(epochs, est._metric) if verbose else None
        if callbacks is None:
            callbacks = []
        elif callable(callbacks):
            callbacks = [callbacks]
        else:
            callbacks = list(callbacks)
        for cb in callbacks:
            if not callable(cb):
                raise TypeError(
                    f"callbacks: expected a callable or a list of callables, got {cb!r}"
                )
        self.callbacks = callbacks

    def __call__(self, info: dict) -> bool | None:
        info = dict(info, model=self.est)
        if self.progress is not None:
            self.progress(info)
        go_on = True
        for cb in self.callbacks:
            if cb(info) is False:
                go_on = False
        return None if go_on else False

    def close(self) -> None:
        """Closes the tqdm bar, which stays open when training ends before its last epoch."""
        if self.progress is not None:
            self.progress.close()


# --------------------------------------------------------------------------- the base
class _BaseMLP(BaseEstimator):
    """What MLPClassifier and MLPRegressor share: parameters, the fit loop, attributes."""

    _loss_options: tuple[str, ...] = ()
    _metric = ""
    _FITTED: tuple[str, ...]
    _mlp: MLP
    loss_curve_: list[float]
    validation_scores_: list[float] | None
    validation_loss_curve_: list[float] | None
    best_validation_score_: float | None
    best_loss_: float | None

    # ---- settings
    def _validated(self) -> dict:
        """Checks every parameter; returns the normalized settings.

        The training settings (alpha, learning_rate_init, momentum, ...) are checked by
        mlpfast's core, by the same function ``MLP.fit`` checks its own with; this method
        checks their types, the parameters only the estimators have, and names the
        parameter in scikit-learn's words.
        """
        hidden = _hidden_sizes(self.hidden_layer_sizes)
        _check_choice(self, "activation", tuple(_ACTIVATIONS))
        _check_choice(self, "solver", _SOLVERS)
        _check_choice(self, "loss", self._loss_options)
        if not (self.batch_size == "auto" or _is_int(self.batch_size)):
            raise _bad("batch_size", "'auto' or an int >= 1", self.batch_size)
        if not (_is_int(self.max_iter) and self.max_iter >= 1):
            raise _bad("max_iter", "an int >= 1", self.max_iter)
        _check_real(self, "validation_fraction", 0.0, 1.0, hi_open=True)
        nic = self.n_iter_no_change
        if not (_is_int(nic) or (_is_real(nic) and nic == np.inf)):
            raise _bad("n_iter_no_change", "an int >= 1 or numpy.inf", nic)
        if not (_is_int(self.max_fun) and self.max_fun >= 1):
            raise _bad("max_fun", "an int >= 1", self.max_fun)
        for name in ("shuffle", "warm_start", "nesterovs_momentum", "early_stopping"):
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise _bad(name, "a bool", getattr(self, name))
        self._check_training_settings()
        _check_real(self, "dropout", 0.0, 1.0, hi_open=True)
        if not isinstance(self.batch_norm, (bool, np.bool_)):
            raise _bad("batch_norm", "a bool", self.batch_norm)
        if self.batch_norm and self.solver == "lbfgs":
            raise ValueError(
                "batch_norm: expected False with solver='lbfgs' (batch normalization "
                "normalizes minibatches; lbfgs fits the whole data at once), got True"
            )
        return {
            "hidden": hidden,
            "activation": _ACTIVATIONS[self.activation],
            "dtype": _dtype_name(self.dtype),
            "dropout": float(self.dropout),
            "batch_norm": bool(self.batch_norm),
            "n_iter_no_change": None if nic == np.inf else int(nic),
        }

    def _real_settings(self) -> dict[str, float]:
        """The real-valued training parameters as MLP.fit's keywords."""
        return {core: float(getattr(self, name)) for core, name in _REAL_SETTINGS.items()}

    def _check_training_settings(self) -> None:
        """The core's check of the training settings, its errors in scikit-learn's words."""
        for name in (*_REAL_SETTINGS.values(), "beta_1", "beta_2"):
            if not _is_real(getattr(self, name)):
                raise _bad(name, "a float", getattr(self, name))
        if not isinstance(self.learning_rate, str):
            raise _bad(
                "learning_rate",
                "a str among " + ", ".join(map(repr, _SCHEDULES)),
                self.learning_rate,
            )
        settings: dict[str, Any] = {
            **self._real_settings(),
            "betas": (float(self.beta_1), float(self.beta_2)),
            "schedule": self.learning_rate,
        }
        if self.solver != "sgd":
            # adam and lbfgs ignore momentum: only scikit-learn's own range [0, 1] applies
            # (sgd needs momentum < 1, the core's rule).
            _check_real(self, "momentum", 0.0, 1.0)
            settings["momentum"] = 0.0
        if _is_int(self.batch_size):
            settings["batch_size"] = int(self.batch_size)
        if _is_int(self.n_iter_no_change):
            settings["n_iter_no_change"] = int(self.n_iter_no_change)
        if _is_int(self.max_iter):
            settings["epochs"] = int(self.max_iter)
        try:
            _check_fit_settings(settings, _dtype_name(self.dtype))
        except ValueError as exc:
            name = {**_REAL_SETTINGS, **_OTHER_SETTINGS}.get(getattr(exc, "arg", None))
            if name is None:
                raise
            raise _bad(name, exc.expected, getattr(self, name)) from None

    # ---- hooks the subclasses fill
    def _validate_input(self, X, y, incremental: bool, reset: bool):
        raise NotImplementedError

    def _native_loss(self) -> str:
        raise NotImplementedError

    def _out_activation(self) -> str:
        raise NotImplementedError

    def _loss_scale(self) -> float:
        """Factor from MLP.fit's epoch loss to scikit-learn's ``loss_``."""
        return 1.0

    def _stratify(self, Y):
        return None

    def _class_weights(self, Y, sample_weight, incremental: bool):
        """Per-row factors from ``class_weight`` (classifiers), or None."""
        return None

    def _row_weights(self, X, Y, sample_weight, incremental: bool):
        """``sample_weight`` checked as scikit-learn checks it, times the class weights, in
        float64 (the network rounds them to its dtype once); None when neither is given."""
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        factors = self._class_weights(Y, sample_weight, incremental)
        if factors is None:
            return sample_weight
        factors = np.asarray(factors, dtype=np.float64)
        return factors if sample_weight is None else sample_weight * factors

    # ---- the fitted model
    def _bind_params(self) -> None:
        """coefs_ and intercepts_: live views of the native Linear / Maxout layers' weights
        and biases; batch_norm_layers_: the BatchNorm layers."""
        layers = self._mlp.param_layers
        matrices = [lay for lay in layers if not isinstance(lay, BatchNorm)]
        self.coefs_ = [lay.weight for lay in matrices]
        self.intercepts_ = [lay.bias for lay in matrices]
        self.batch_norm_layers_ = [lay for lay in layers if isinstance(lay, BatchNorm)]

    def __getstate__(self):
        state = dict(super().__getstate__())
        # Views of the native weights: the pickled MLP holds them; rebound on unpickling.
        state.pop("coefs_", None)
        state.pop("intercepts_", None)
        state.pop("batch_norm_layers_", None)
        return state

    def __setstate__(self, state):
        # Estimators pickled before these parameters existed had them off.
        state = {"dropout": 0.0, "batch_norm": False, **state}
        super().__setstate__(state)
        if "_mlp" in self.__dict__:
            self._bind_params()

    def _initialize(self, layer_sizes: list[int], settings: dict, rs) -> None:
        self._mlp = MLP(
            layer_sizes,
            activation=settings["activation"],
            loss=self._native_loss(),
            dtype=settings["dtype"],
            dropout=settings["dropout"],
            batch_norm=settings["batch_norm"],
            seed=0,
        )
        # scikit-learn's initialization, drawn from the same generator in the same order:
        # weights and biases uniform in +-sqrt(6 / (fan_in + fan_out)) (2 instead of 6 for
        # logistic units); a Maxout layer draws each piece so. BatchNorm starts at weight 1,
        # bias 0 (PyTorch's).
        factor = 2.0 if self.activation == "logistic" else 6.0
        for lay in self._mlp.param_layers:
            if isinstance(lay, BatchNorm):
                continue
            shape = lay.weight.shape
            bound = np.sqrt(factor / (shape[-2] + shape[-1]))
            lay.weight = rs.uniform(-bound, bound, shape)
            lay.bias = rs.uniform(-bound, bound, lay.bias.shape)
        self._bind_params()
        self.n_iter_ = 0
        self.t_ = 0
        self.n_outputs_ = layer_sizes[-1]
        self.n_layers_ = len(layer_sizes)
        self.out_activation_ = self._out_activation()
        stale = (
            "loss_curve_",
            "best_loss_",
            "validation_scores_",
            "validation_loss_curve_",
            "best_validation_score_",
        )
        for name in stale:
            self.__dict__.pop(name, None)
        if self.solver != "lbfgs":
            self.loss_curve_ = []
            if self.early_stopping:
                self.validation_scores_ = []
                self.validation_loss_curve_ = []
                self.best_validation_score_ = -np.inf
                self.best_loss_ = None
            else:
                self.best_loss_ = np.inf
                self.validation_scores_ = None
                self.validation_loss_curve_ = None
                self.best_validation_score_ = None

    def _check_same_model(self, layer_sizes: list[int], settings: dict) -> None:
        mlp = self._mlp
        built = (
            mlp.layer_sizes,
            mlp.activation,
            mlp.loss_name,
            mlp.dtype,
            mlp.dropout,
            mlp.batch_norm,
        )
        wanted = (
            layer_sizes,
            settings["activation"],
            self._native_loss(),
            settings["dtype"],
            settings["dropout"],
            settings["batch_norm"],
        )
        if built != wanted:
            raise ValueError(
                "warm_start / partial_fit continue the fitted network, which has layer sizes "
                f"{built[0]}, activation {built[1]!r}, loss {built[2]!r}, dtype {built[3]!r}, "
                f"dropout {built[4]!r} and batch_norm {built[5]!r}; the current parameters "
                f"and data ask for {wanted[0]}, {wanted[1]!r}, {wanted[2]!r}, {wanted[3]!r}, "
                f"{wanted[4]!r}, {wanted[5]!r}. Set warm_start=False to fit a new network."
            )

    # ---- fitting
    def _fit(self, X, y, *, incremental: bool, callbacks=None, sample_weight=None):
        settings = self._validated()
        first_pass = not hasattr(self, "_mlp") or (not self.warm_start and not incremental)
        X, Y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._row_weights(X, Y, sample_weight, incremental)
        n_outputs = self._n_outputs(Y)
        layer_sizes = [X.shape[1], *settings["hidden"], n_outputs]
        rs = check_random_state(self.random_state)
        if first_pass:
            self._initialize(layer_sizes, settings, rs)
        else:
            self._check_same_model(layer_sizes, settings)
        if self.solver == "lbfgs":
            self._fit_lbfgs(X, Y, sample_weight)
        else:
            self._fit_stochastic(X, Y, sample_weight, rs, settings, incremental, callbacks)
        if not all(np.isfinite(w).all() for w in (*self.coefs_, *self.intercepts_)):
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                "large values and need to be preprocessed."
            )
        return self

    def _n_outputs(self, Y) -> int:
        return 1 if Y.ndim == 1 else Y.shape[1]

    def _fit_stochastic(self, X, Y, sw, rs, settings, incremental, callbacks) -> None:
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        validation = None
        if self.early_stopping:
            X, Xv, Y, Yv, sw, swv = self._split(X, Y, sw, rs)
            validation = (Xv, Yv, swv)
        n = X.shape[0]
        if self.batch_size == "auto":
            batch_size = min(200, n)
        else:
            if self.batch_size > n:
                warnings.warn(
                    "Got `batch_size` less than 1 or larger than sample size. It is going to "
                    "be clipped",
                    stacklevel=5,
                )
            batch_size = int(np.clip(self.batch_size, 1, n))
        epochs = 1 if incremental else int(self.max_iter)
        listener = _EpochListener(self, epochs, bool(self.verbose), callbacks)
        sgd = self.solver == "sgd"
        reals = self._real_settings()
        if not sgd:
            reals["momentum"] = 0.0
        interrupted = False
        diverged = None
        history = self._mlp.history
        before = (len(history["loss"]), len(history.get("val_loss", [])), self._mlp.samples_seen)
        try:
            self._mlp.fit(
                X,
                Y,
                sample_weight=sw,
                **reals,
                epochs=epochs,
                batch_size=batch_size,
                optimizer=self.solver,
                nesterov=bool(self.nesterovs_momentum) and reals["momentum"] > 0.0,
                shuffle=bool(self.shuffle),
                seed=int(rs.randint(np.iinfo(np.int32).max)),
                validation_data=validation,
                betas=(float(self.beta_1), float(self.beta_2)),
                callbacks=listener,
                schedule=self.learning_rate if sgd else "constant",
                n_iter_no_change=settings["n_iter_no_change"],
                # partial_fit continues the optimizer, its rate and the stopping rule.
                resume=incremental,
                # scikit-learn's alpha: a batch of n rows adds 0.5 * alpha / n * ||W||^2.
                _l2_per_sample=True,
                # The losses MLP.fit reports (and its stopping rule watches) are loss_'s.
                _reported_data_scale=self._loss_scale(),
            )
        except KeyboardInterrupt:
            # As scikit-learn: Ctrl-C ends training, keeping the weights of the last step.
            warnings.warn("Training interrupted by user.", stacklevel=5)
            interrupted = True
        except FloatingPointError as exc:
            # The network keeps the weights of the last finite step; the curves keep the
            # epochs before it.
            diverged = exc
        finally:
            listener.close()
        self._read_session(before)
        if diverged is not None:
            # scikit-learn's error for a diverged solver (a ValueError), with what happened.
            raise ValueError(
                "Solver produced non-finite parameter weights. The input data may contain "
                f"large values and need to be preprocessed. ({diverged})"
            ) from diverged
        if (
            not incremental
            and not interrupted
            and not self._mlp.stopped_early
            and self.n_iter_ == self.max_iter
        ):
            warnings.warn(
                f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet.",
                ConvergenceWarning,
                stacklevel=5,
            )

    def _read_session(self, before: tuple[int, int, int]) -> None:
        """This fit's epochs, from the network's training session (on scikit-learn's scale:
        see ``_reported_data_scale``).

        ``before`` is what the session held before the fit (epochs, validated epochs,
        samples); the curves go on from what the estimator had (a loaded or unpickled
        estimator has them from its file, its network a fresh session).
        """
        epochs, validated, seen = before
        history = self._mlp.history
        losses = history["loss"][epochs:]
        self.n_iter_ = len(losses)
        self.t_ += self._mlp.samples_seen - seen
        self.loss_curve_ = [*self.loss_curve_, *losses]
        if self.loss_curve_:
            self.loss_ = self.loss_curve_[-1]
        elif not hasattr(self, "loss_"):
            self.loss_ = float("nan")
        if self.early_stopping:
            scores = history.get(self._metric, [])[validated:]
            val_losses = history.get("val_loss", [])[validated:]
            # (None after a warm start from a fit without early stopping.)
            self.validation_scores_ = [*(self.validation_scores_ or []), *scores]
            self.validation_loss_curve_ = [*(self.validation_loss_curve_ or []), *val_losses]
            best = self.best_validation_score_
            self.best_validation_score_ = max([-np.inf if best is None else best, *scores])
            self.best_loss_ = None
        else:
            best = self.best_loss_
            self.best_loss_ = min([np.inf if best is None else best, *losses])

    def _split(self, X, Y, sw, rs):
        """scikit-learn's validation split for early stopping (the weights split alike)."""
        stratify = self._stratify(Y)
        kw = {"random_state": rs, "test_size": self.validation_fraction}
        arrays = (X, Y) if sw is None else (X, Y, sw)
        try:
            parts = train_test_split(*arrays, stratify=stratify, **kw)
        except ValueError:
            if stratify is None:
                raise
            # A class too rare to stratify on: a plain split, as scikit-learn makes.
            parts = train_test_split(*arrays, **kw)
        X, Xv, Y, Yv = parts[:4]
        sw, swv = parts[4:] if sw is not None else (None, None)
        if Xv.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size "
                "of your dataset."
            )
        return X, Xv, Y, Yv, sw, swv

    def _fit_lbfgs(self, X, Y, sw) -> None:
        """scipy's L-BFGS-B on the full-batch loss and gradient (scikit-learn's lbfgs)."""
        from scipy.optimize import minimize

        layers = self._mlp.param_layers
        mlp = self._mlp
        # alpha is divided by the row count, or by the weight sum (as scikit-learn).
        n = X.shape[0] if sw is None else float(np.sum(sw, dtype=np.float64))
        alpha = float(self.alpha)
        shapes = [(lay.weight.shape, lay.bias.shape) for lay in layers]

        def pack(pairs) -> np.ndarray:
            return np.concatenate([np.ravel(a) for pair in pairs for a in pair]).astype(np.float64)

        def unpack(theta: np.ndarray) -> None:
            at = 0
            for lay, (ws, bs) in zip(layers, shapes):
                size_w, size_b = int(np.prod(ws)), int(np.prod(bs))
                lay.weight[...] = theta[at : at + size_w].reshape(ws)
                at += size_w
                lay.bias[...] = theta[at : at + size_b].reshape(bs)
                at += size_b

        last = [float("nan")]

        def fun(theta: np.ndarray):
            unpack(theta)
            # The loss with the L2 term, and its gradient, as the core computes them.
            value, grads = mlp.loss(X, Y, weight_decay=alpha / n, sample_weight=sw)
            last[0] = float(value)
            return last[0], pack(grads)

        iteration = [0]

        def report(*_) -> None:
            iteration[0] += 1
            if self.verbose:
                print(f"Iteration {iteration[0]}, loss = {last[0]:.8f}")

        result = minimize(
            fun,
            pack((lay.weight, lay.bias) for lay in layers),
            method="L-BFGS-B",
            jac=True,
            callback=report,
            options={"maxfun": int(self.max_fun), "maxiter": int(self.max_iter), "gtol": self.tol},
        )
        unpack(result.x)
        if result.status != 0:
            warnings.warn(
                f"lbfgs failed to converge after {result.nit} iteration(s) "
                f"(status={result.status}): {result.message}. Increase the number of "
                "iterations (max_iter) or scale the data.",
                ConvergenceWarning,
                stacklevel=5,
            )
        self.n_iter_ = min(int(result.nit), int(self.max_iter))
        data_loss, _ = mlp.loss(X, Y, sample_weight=sw)
        self.loss_ = float(data_loss) * self._loss_scale() + mlp.l2_penalty(alpha / n)

    # ---- prediction helpers
    def _native(self, method: str, X):
        """``self._mlp.<method>`` on X, checked as scikit-learn checks it for prediction.

        A plain two-dimensional numpy array of numbers, with the fitted number of columns and
        at least one row, from an estimator fitted without feature names, needs none of
        ``validate_data``'s work but the conversion to the model's dtype (finiteness is
        checked by the native call, which refuses NaN and infinity): that fast path keeps
        one-row prediction in microseconds. Anything else, and any refusal, goes through
        ``check_is_fitted`` and ``validate_data``, so errors and warnings are scikit-learn's.
        """
        d = self.__dict__
        mlp = d.get("_mlp")
        if (
            type(X) is np.ndarray
            and mlp is not None
            and X.ndim == 2
            and X.dtype.kind in "fiub"
            and X.shape[0] > 0
            and X.shape[1] == d.get("n_features_in_")
            and "feature_names_in_" not in d
        ):
            try:
                return getattr(mlp, method)(np.ascontiguousarray(X, dtype=mlp.dtype))
            except ValueError:
                # scikit-learn's message for the same input, if it has one. (A value beyond
                # float32 has become inf above, with numpy's overflow warning: once is enough.)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    self._check_x(X)
                raise
        check_is_fitted(self)
        return getattr(self._mlp, method)(self._check_x(X))

    def _check_x(self, X):
        X = validate_data(
            self,
            X,
            accept_sparse=["csr", "csc"],
            dtype=np.dtype(self._mlp.dtype),
            order="C",
            reset=False,
        )
        return _dense(X)

    def _check_xy(self, X, y, reset: bool, **kw):
        dtype = np.dtype(_dtype_name(self.dtype))
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            dtype=dtype,
            order="C",
            reset=reset,
            **kw,
        )
        X = _dense(X)
        if scipy.sparse.issparse(y):
            y = y.toarray()
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    # ---- model files (see mlpfast.io and ._files)
    _FITTED = (
        "n_features_in_",
        "feature_names_in_",
        "n_iter_",
        "t_",
        "n_layers_",
        "n_outputs_",
        "out_activation_",
        "loss_",
        "best_loss_",
        "loss_curve_",
        "validation_scores_",
        "validation_loss_curve_",
        "best_validation_score_",
    )

    def _mlpfast_file_state(self):
        """(MLP, metadata) for :func:`mlpfast.io.save`."""
        check_is_fitted(self)
        params = self.get_params(deep=False)
        rs = params["random_state"]
        if not (rs is None or _is_int(rs)):
            warnings.warn(
                "random_state is a generator, which a model file cannot hold: it is saved as None",
                UserWarning,
                stacklevel=3,
            )
            params["random_state"] = None
        params["dtype"] = _dtype_name(params["dtype"])
        fitted = {k: getattr(self, k) for k in self._FITTED if hasattr(self, k)}
        return self._mlp, metadata(self, params, fitted)

    @classmethod
    def _from_file_state(cls, mlp: MLP, params: dict, fitted: dict, where: str):
        """The estimator a model file describes (see :func:`mlpfast.io.load`)."""

        def fail(what: str) -> ValueError:
            return ValueError(f"{where}: corrupt estimator metadata ({what})")

        known = set(cls().get_params())
        if set(params) - known:
            raise fail(f"unknown parameters {shown(sorted(set(params) - known))}")
        if set(fitted) - set(cls._FITTED):
            raise fail(f"unknown attributes {shown(sorted(set(fitted) - set(cls._FITTED)))}")
        est = cls(**params)
        for name, value in fitted.items():
            setattr(est, name, value)
        est._mlp = mlp
        est._bind_params()
        sizes = mlp.layer_sizes
        n_in, n_out = fitted.get("n_features_in_"), fitted.get("n_outputs_")
        if not (_is_int(n_in) and _is_int(n_out) and (n_in, n_out) == (sizes[0], sizes[-1])):
            raise fail(
                f"n_features_in_ / n_outputs_ {shown(n_in)} / {shown(n_out)} do not match the "
                f"network's {sizes[0]} inputs and {sizes[-1]} outputs"
            )
        try:
            est._check_restored()
        except (TypeError, ValueError, AttributeError) as exc:
            raise fail(str(exc)) from None
        return est

    def _check_restored(self) -> None:
        names = getattr(self, "feature_names_in_", None)
        if names is not None and (
            not isinstance(names, np.ndarray) or names.shape != (self.n_features_in_,)
        ):
            raise ValueError("feature_names_in_ does not match n_features_in_")
        settings = self._validated()
        self._check_same_model(self._mlp.layer_sizes, settings)

    def save(self, path) -> None:
        """Writes the fitted estimator to a safetensors file; :func:`mlpfast.load` reads it.

        The file holds the architecture, the weights, ``get_params()`` and the fitted
        attributes (``classes_`` with their dtype), and no code. The optimizer state (for
        ``partial_fit`` / ``warm_start``) is not saved.

        Parameters
        ----------
        path : str or os.PathLike
            Where to write (an existing file is replaced).
        """
        _modelfile.write(path, _modelfile.encode(*self._mlpfast_file_state()))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _has_partial_fit(est: _BaseMLP) -> bool:
    if est.solver == "lbfgs":
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {est.solver} is not "
            "stochastic."
        )
    return True


_PARAMS_DOC = """
    Parameters
    ----------
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of neurons in the ith hidden layer.
    activation : {"identity", "logistic", "tanh", "relu", "leaky_relu", "elu", "maxout"}, \
default="relu"
        Activation of the hidden layers. ``"leaky_relu"`` (slope 0.01), ``"elu"`` (alpha 1)
        and ``"maxout"`` (hidden layers of two-piece Maxout units; their ``coefs_`` are
        ``(2, fan_in, fan_out)`` arrays) are mlpfast's additions.
    solver : {"adam", "sgd", "adamw", "rmsprop", "lbfgs"}, default="adam"
        ``"sgd"``, ``"adam"``, ``"adamw"`` and ``"rmsprop"`` train in one call into Rust
        (mlpfast's additions, PyTorch's AdamW and RMSprop, use ``MLP.fit``'s defaults for
        their own settings: RMSprop's alpha 0.99, no momentum); ``"lbfgs"`` runs scipy's
        L-BFGS-B on mlpfast's full-batch loss and gradient.
    alpha : float, default=0.0001
        L2 penalty, scikit-learn's convention: a batch of n rows adds
        ``0.5 * alpha / n * sum ||W||^2`` (weights, not biases) to its loss; with
        ``sample_weight``, n is the batch's weight sum. With ``solver="adamw"`` it is the
        decoupled weight decay on the same scale instead: each step shrinks the weights by
        ``1 - lr * alpha / n`` and adds nothing to the loss.
    batch_size : int or "auto", default="auto"
        Minibatch size; "auto" is ``min(200, n_samples)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Learning-rate schedule of ``solver="sgd"``: "invscaling" uses
        ``learning_rate_init / (t + 1) ** power_t`` after every epoch, t the samples seen;
        "adaptive" divides the rate by 5 where the stopping rule would stop, until it is
        at most 1e-6.
    learning_rate_init : float, default=0.001
        Initial learning rate (sgd, adam).
    power_t : float, default=0.5
        Exponent of the "invscaling" schedule.
    max_iter : int, default=200
        Maximum number of epochs (sgd, adam) or iterations (lbfgs).
    shuffle : bool, default=True
        Shuffle the samples before every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the weight initialization, the early-stopping split and the shuffling.
    tol : float, default=1e-4
        Improvement of the loss or validation score that counts for the stopping rule.
    verbose : bool, default=False
        Print mlpfast's progress line after every epoch (a tqdm bar too, when installed).
    warm_start : bool, default=False
        ``fit`` continues from the fitted weights (with a new optimizer).
    momentum : float, default=0.9
        Momentum of sgd (mlpfast: must be below 1).
    nesterovs_momentum : bool, default=True
        Nesterov's momentum for sgd (when momentum > 0).
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the training data (stratified for single-output
        classification), stop when its score has not improved by ``tol`` for
        ``n_iter_no_change`` epochs, and end with the weights of the best score.
    validation_fraction : float, default=0.1
        Share of the training data held out for early stopping.
    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's moment decay rates.
    epsilon : float, default=1e-8
        Adam's numerical-stability constant.
    n_iter_no_change : int or numpy.inf, default=10
        Epochs without improvement tolerated by the stopping rule (inf: never stop early).
    max_fun : int, default=15000
        Maximum number of loss evaluations of lbfgs (unused by sgd and adam).
"""

_ATTRIBUTES_DOC = """
    Attributes
    ----------
    coefs_ : list of ndarray
        Weight matrices, ``coefs_[i]`` of shape (fan_in, fan_out), or (pieces, fan_in,
        fan_out) for Maxout layers. They are live views of the network's memory.
    intercepts_ : list of ndarray
        Bias vectors, ``intercepts_[i]`` of shape (fan_out,), or (pieces, fan_out). With
        ``batch_norm``, a Linear layer's biases before a BatchNorm stay as initialized
        (their gradient is 0).
    batch_norm_layers_ : list of mlpfast.BatchNorm
        With ``batch_norm``, the BatchNorm after each hidden layer (its ``weight``, ``bias``,
        ``running_mean`` and ``running_var``); empty otherwise. mlpfast's addition.
    loss_ : float
        The loss of the last epoch (lbfgs: at the solution), with the L2 term.
    best_loss_ : float or None
        The smallest ``loss_curve_`` value; None with early stopping (and unset for lbfgs).
    loss_curve_ : list of float
        The loss of every epoch (not set by lbfgs).
    validation_scores_ : list of float or None
        The validation score of every epoch with early stopping, None otherwise.
    validation_loss_curve_ : list of float or None
        The validation loss of every epoch with early stopping (on ``loss_curve_``'s scale,
        without the L2 term), None otherwise. mlpfast's addition.
    best_validation_score_ : float or None
        The best validation score with early stopping, None otherwise.
    t_ : int
        Training samples seen over all fits.
    n_iter_ : int
        Epochs (lbfgs: iterations) run by the last fit.
    n_layers_ : int
        Number of layers, input and output included.
    n_outputs_ : int
        Number of output units.
    out_activation_ : str
        The output's activation.
    n_features_in_ : int
        Number of features seen by fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of the features seen by fit, when X had string column names.
"""
