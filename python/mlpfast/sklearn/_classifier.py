"""``MLPClassifier``: mlpfast's drop-in for scikit-learn's multilayer perceptron classifier."""

from __future__ import annotations

from typing import Callable

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils.class_weight import compute_class_weight, compute_sample_weight
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels

from mlpfast._fields import shown

from ._base import (
    _ATTRIBUTES_DOC,
    _PARAMS_DOC,
    _BaseMLP,
    _dtype_name,
    _has_partial_fit,
    _unchanged_on_refusal,
)


def _has_proba(est: MLPClassifier) -> bool:
    if est.loss == "hinge":
        raise AttributeError("predict_proba is not available with loss='hinge'")
    return True


def _has_decision(est: MLPClassifier) -> bool:
    if est.loss != "hinge":
        raise AttributeError("decision_function is available with loss='hinge' only")
    return True


# --------------------------------------------------------------------------- classifier
class MLPClassifier(ClassifierMixin, _BaseMLP):
    """Multilayer perceptron classifier trained by mlpfast; scikit-learn's drop-in.

    Binary targets get one logistic output (loss: binary cross-entropy), multiclass
    targets a softmax output (cross-entropy), and multilabel indicator matrices one
    logistic output per label. Labels may be strings, integers or booleans.
    """

    __doc__ = (
        (__doc__ or "")
        + _PARAMS_DOC
        + """    loss : {"log_loss", "hinge"}, default="log_loss"
        Training loss: the log loss, or the multiclass SVM (hinge) loss on one score per
        class (binary and multiclass targets; ``decision_function`` instead of
        ``predict_proba``). mlpfast's addition.
    class_weight : dict, list of dicts, "balanced" or None, default=None
        Weights of the classes, multiplied into ``sample_weight``: ``{label: weight}`` (other
        classes weigh 1), or "balanced", ``n_samples / (n_classes * count)`` with the counts
        weighted by ``sample_weight`` (scikit-learn's ``compute_class_weight``). For a
        multilabel indicator ``y``, "balanced" or one dict per label (``{0: w0, 1: w1}``),
        multiplied over the labels (scikit-learn's ``compute_sample_weight``). Not
        "balanced" in ``partial_fit``. mlpfast's addition.
    dtype : {"float32", "float64"}, default="float32"
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
        + """    classes_ : ndarray
        The class labels (for multilabel targets, the label indices 0..K-1).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from mlpfast.sklearn import MLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
"""
    )

    _loss_options = ("log_loss", "hinge")
    _metric = "val_accuracy"

    def __init__(
        self,
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
        loss="log_loss",
        class_weight=None,
        dtype="float32",
        dropout=0.0,
        batch_norm=False,
    ):
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
        self.loss = loss
        self.class_weight = class_weight
        self.dtype = dtype
        self.dropout = dropout
        self.batch_norm = batch_norm

    # ---- targets
    def _set_classes(self, classes, kind: str) -> None:
        if kind != "multilabel" and len(classes) < 2:
            raise ValueError(
                "MLPClassifier needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {classes[0]!r}"
            )
        if kind == "multilabel" and self.loss == "hinge":
            raise ValueError(
                "loss='hinge' supports binary and multiclass targets, not multilabel ones; "
                "use loss='log_loss'"
            )
        self.classes_ = classes
        if kind != "multilabel":
            kind = "binary" if len(classes) == 2 else "multiclass"
        self._kind = kind

    def _validate_input(self, X, y, incremental, reset):
        X, y = self._check_xy(X, y, reset)
        check_classification_targets(y)
        kind = type_of_target(y)
        if kind.startswith("multilabel"):
            kind = "multilabel"
        elif kind not in ("binary", "multiclass"):
            raise ValueError("Multioutput target data is not supported with label binarization")
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            classes = np.arange(y.shape[1]) if kind == "multilabel" else unique_labels(y)
            self._set_classes(classes, kind)
        elif self.warm_start and not incremental:
            classes = np.arange(y.shape[1]) if kind == "multilabel" else unique_labels(y)
            if set(classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the "
                    f"previous call to fit. Previously got {self.classes_}, `y` has {classes}"
                )
        return X, self._encode(y)

    def _encode(self, y) -> np.ndarray:
        """Targets as MLP.fit takes them: class indices, or 0/1 for logistic outputs."""
        dtype = np.dtype(_dtype_name(self.dtype))
        if self._kind == "multilabel":
            if y.ndim != 2 or y.shape[1] != len(self.classes_):
                raise ValueError(
                    f"y: expected a multilabel indicator matrix with {len(self.classes_)} "
                    f"columns, got an array of shape {y.shape}"
                )
            return np.ascontiguousarray(y, dtype=dtype)
        if y.ndim != 1:
            raise ValueError(f"y: expected a 1-d array of labels, got shape {y.shape}")
        try:
            idx = np.searchsorted(self.classes_, y)
            idx = np.minimum(idx, len(self.classes_) - 1)
            known = self.classes_[idx] == y
        except TypeError:
            known = np.zeros(len(y), dtype=bool)
            idx = np.zeros(len(y), dtype=np.intp)
        if not np.all(known):
            raise ValueError(
                f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. "
                f"'y' has {unique_labels(y)}."
            )
        if self._native_loss() == "bce":
            return idx.astype(dtype)
        return idx.astype(np.int64)

    def _native_loss(self) -> str:
        if self.loss == "hinge":
            return "svm"
        return "softmax" if self._kind == "multiclass" else "bce"

    def _out_activation(self) -> str:
        return {"svm": "identity", "softmax": "softmax", "bce": "logistic"}[self._native_loss()]

    def _n_outputs(self, Y) -> int:
        if self._kind == "multilabel":
            return Y.shape[1]
        return 1 if self._native_loss() == "bce" else len(self.classes_)

    def _stratify(self, Y):
        return Y if Y.ndim == 1 else None

    def _class_weights(self, Y, sample_weight, incremental: bool):
        """Each row's ``class_weight`` factor, scikit-learn's ``compute_class_weight`` (with
        the sample weights, for "balanced", as LogisticRegression counts them)."""
        cw = self.class_weight
        if cw is None:
            return None
        if not (isinstance(cw, (dict, list)) or (isinstance(cw, str) and cw == "balanced")):
            raise ValueError(
                "The 'class_weight' parameter must be None, 'balanced', a dict or a list of "
                f"dicts. Got {cw!r} instead."
            )
        if incremental and cw == "balanced":
            raise ValueError(
                "class_weight='balanced' needs the class frequencies of all the data, which "
                "partial_fit does not see: compute them with sklearn.utils.class_weight."
                "compute_class_weight('balanced', classes=classes, y=y) on the full targets "
                "(or a large sample) and pass them as a dict."
            )
        if self._kind == "multilabel":
            # One output per label, classes 0 and 1: scikit-learn's multi-output meaning
            # (the product over the outputs; "balanced" counts rows, unweighted).
            return compute_sample_weight(cw, Y.astype(np.intp))
        if isinstance(cw, list):
            raise ValueError(
                "class_weight: a list of dicts is for multilabel targets (one per label); "
                "binary and multiclass targets take a dict"
            )
        idx = Y.astype(np.intp)
        present = np.unique(idx)
        # "balanced" counts the classes in y (all of them, in a fit); a dict may name any.
        classes = self.classes_[present] if cw == "balanced" else self.classes_
        per_class = compute_class_weight(
            cw, classes=classes, y=self.classes_[idx], sample_weight=sample_weight
        )
        table = np.ones(len(self.classes_))
        table[present if cw == "balanced" else slice(None)] = per_class
        return table[idx]

    _FITTED = (*_BaseMLP._FITTED, "classes_", "_kind")

    def _check_restored(self) -> None:
        kinds = ("binary", "multiclass", "multilabel")
        if not (isinstance(self._kind, str) and self._kind in kinds):
            raise ValueError(f"unknown target kind {shown(self._kind)}")
        if not isinstance(self.classes_, np.ndarray) or self.classes_.ndim != 1:
            raise ValueError("classes_ must be a 1-d array")
        if self._n_outputs(np.empty((0, len(self.classes_)))) != self._mlp.layer_sizes[-1]:
            raise ValueError("classes_ do not match the network's outputs")
        super()._check_restored()

    # ---- API
    @_unchanged_on_refusal
    def fit(self, X, y, sample_weight=None, *, callbacks: Callable | list | None = None):
        """Fits the network to data matrix X and labels y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data (sparse matrices are densified).
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels (strings, integers or booleans), or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples (finite, >= 0, not all zero), times ``class_weight``'s:
            every batch's loss is the weighted mean over its rows, as scikit-learn's.
        callbacks : callable or list of callables, optional
            Called after every epoch with a dict of its figures ("epoch", "epochs", "loss",
            "val_loss" and "val_accuracy" with early stopping, "lr", "elapsed",
            "samples_per_second", "remaining"); one returning exactly False stops training.

        Returns
        -------
        self : MLPClassifier
            The fitted estimator.
        """
        return self._fit(X, y, incremental=False, callbacks=callbacks, sample_weight=sample_weight)

    @available_if(_has_partial_fit)
    @_unchanged_on_refusal
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """Trains for one epoch on (X, y), continuing the network and its optimizer.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            The labels.
        classes : array-like of shape (n_classes,), default=None
            All the classes over all calls; required on the first call, optional after.
            Not needed for a multilabel indicator ``y``.
        sample_weight : array-like of shape (n_samples,), default=None
            Weights of the samples, as in ``fit``.

        Returns
        -------
        self : MLPClassifier
            The updated estimator.
        """
        self._validated()
        if not hasattr(self, "classes_"):
            if type_of_target(y).startswith("multilabel"):
                self._set_classes(np.arange(np.shape(y)[1]), "multilabel")
            elif classes is None:
                raise ValueError("classes must be passed on the first call to partial_fit.")
            else:
                classes = unique_labels(classes)
                self._set_classes(classes, "binary" if len(classes) == 2 else "multiclass")
        elif classes is not None and not np.array_equal(self.classes_, unique_labels(classes)):
            raise ValueError(
                f"`classes={classes!r}` is not the same as on last call to partial_fit, was: "
                f"{self.classes_!r}"
            )
        return self._fit(X, y, incremental=True, sample_weight=sample_weight)

    def predict(self, X):
        """Predicts class labels (a 0/1 indicator matrix for multilabel models).

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_labels)
            The predicted classes.
        """
        pred = self._native("predict", X)
        if self._kind == "multilabel":
            return pred
        return self.classes_[pred]

    @available_if(_has_proba)
    def predict_proba(self, X):
        """Class probabilities, columns in the order of ``classes_``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Softmax probabilities (multiclass), ``[1 - p, p]`` (binary) or one probability
            per label (multilabel), in the estimator's dtype.
        """
        return self._native("predict_proba", X)

    @available_if(_has_proba)
    def predict_log_proba(self, X):
        """The logarithm of :meth:`predict_proba`.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_proba : ndarray of shape (n_samples, n_classes)
            ``log(predict_proba(X))``.
        """
        proba = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(proba, out=proba)

    @available_if(_has_decision)
    def decision_function(self, X):
        """Class scores of the hinge-loss (multiclass SVM) network.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        scores : ndarray of shape (n_samples, n_classes) or (n_samples,)
            One score per class, columns in the order of ``classes_``; for two classes, as
            scikit-learn's convention, the second class's score minus the first's (positive
            means ``classes_[1]``).
        """
        scores = self._native("decision_function", X)
        if scores.shape[1] == 2:
            return scores[:, 1] - scores[:, 0]
        return scores

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = self.loss != "hinge"
        return tags
