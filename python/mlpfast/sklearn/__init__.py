"""scikit-learn estimators trained by mlpfast: ``MLPClassifier`` and ``MLPRegressor``.

Switching from scikit-learn is one import::

    # from sklearn.neural_network import MLPClassifier
    from mlpfast.sklearn import MLPClassifier

The classes take every constructor parameter of scikit-learn's ``MLPClassifier`` and
``MLPRegressor`` with the same names and defaults, set the same fitted attributes and follow
the same training semantics (scikit-learn's L2 convention for ``alpha``, its learning-rate
schedules, its stopping rule with ``n_iter_no_change`` and ``tol``, early stopping on a
validation split whose best weights are restored, ``warm_start`` and ``partial_fit``). The
whole training run is one call into mlpfast's Rust core, with the GIL released.

What mlpfast adds:

* ``activation`` may also be ``"leaky_relu"``, ``"elu"`` or ``"maxout"`` (hidden layers of
  ``Maxout(pieces=2)``; their ``coefs_`` entries are arrays of shape
  ``(pieces, fan_in, fan_out)`` and their ``intercepts_`` of shape ``(pieces, fan_out)``);
* ``dtype="float32"`` (the default) or ``"float64"``: the precision of the weights and of all
  computation; inputs are converted once;
* ``MLPClassifier(loss="hinge")``: the multiclass SVM loss instead of the log loss (with
  ``decision_function`` instead of ``predict_proba``);
* ``fit(X, y, callbacks=...)``: callables called after every epoch with its figures, able to
  stop training by returning ``False``; ``verbose=True`` prints mlpfast's progress line
  (loss, validation loss and score, samples/s, elapsed and remaining time);
* ``validation_loss_curve_`` beside ``validation_scores_`` with early stopping, and
  :func:`mlpfast.plot_history` to draw them;
* ``save(path)``: a safe model file (safetensors; see :func:`mlpfast.save`), read back with
  :func:`mlpfast.load`, which never executes code.

The weights start from scikit-learn's initialization, drawn from the same ``random_state``
in the same order, so that with ``dtype="float64"``, ``shuffle=False`` and a constant
learning rate an SGD run is scikit-learn's own, epoch for epoch. Where mlpfast differs:

* ``fit`` takes no ``sample_weight``; ``MLPRegressor(loss="poisson")`` is not supported;
* ``solver="lbfgs"`` runs scipy's L-BFGS-B on mlpfast's full-batch loss and gradient (as
  scikit-learn, it sets no ``loss_curve_`` and has no ``partial_fit``);
* sparse inputs are accepted and densified;
* the early-stopping split is stratified for every single-output classification
  (scikit-learn stratifies binary targets only), falling back to a plain split when a class
  is too rare;
* momentum keeps its velocity in gradient units (PyTorch's form; scikit-learn folds the
  learning rate in), and Adam adds epsilon after the bias correction (PyTorch's form): the
  same runs while the learning rate is constant, slightly different ones with
  ``invscaling`` / ``adaptive`` momentum or for near-zero gradients;
* with several outputs and ``alpha > 0``, the regressor's reported loss divides the L2 term
  by the number of outputs too (scikit-learn divides only the squared error);
* the stopping rule's count (and, with early stopping, the best weights kept) start afresh
  with every ``fit`` call, ``warm_start`` included (``partial_fit`` continues them, as
  scikit-learn's does);
* predictions are computed in ``dtype`` (``predict_proba`` is returned in it; the regressor's
  ``predict`` as float64).

scikit-learn (>= 1.6) is needed by this module only: ``import mlpfast`` works without it.
"""

try:
    import sklearn.base  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    raise ImportError(
        "mlpfast.sklearn needs scikit-learn (>= 1.6): pip install 'scikit-learn>=1.6' (or, "
        "in mlpfast's source tree, pip install '.[sklearn]')"
    ) from exc

import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

from mlpfast._core import MLP

from ._classifier import MLPClassifier
from ._files import read, unknown
from ._regressor import MLPRegressor

# Pickles and reprs name the public module, not the file a class lives in.
MLPClassifier.__module__ = __name__
MLPRegressor.__module__ = __name__

__all__ = ["MLPClassifier", "MLPRegressor"]


_registered = False


def _register_converters() -> None:
    global _registered
    if _registered:
        return
    try:
        from ._skl2onnx import register

        register()
    except Exception as exc:  # an skl2onnx this module does not know must still import
        warnings.warn(
            f"mlpfast.sklearn: could not register its converters with skl2onnx ({exc!r}); "
            "skl2onnx cannot convert pipelines holding mlpfast's estimators",
            RuntimeWarning,
            stacklevel=2,
        )
    _registered = True


class _RegisteringLoader(importlib.abc.Loader):
    """skl2onnx's own loader, which registers the converters once its module has run; every
    other attribute is the wrapped loader's (resource readers and the like)."""

    def __init__(self, loader) -> None:
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module) -> None:
        self._loader.exec_module(module)
        _register_converters()

    def __getattr__(self, name: str):
        return getattr(self._loader, name)


class _WhenSkl2onnxLoads(importlib.abc.MetaPathFinder):
    """Hands out skl2onnx's spec with a loader that registers the converters after the
    module has run: importing skl2onnx here would cost every user of the estimators about
    half a second (onnx with it), also those who never export. It stays on sys.meta_path (a
    spec looked up and never loaded, or an import that failed, leaves the next import to
    register) and steps aside once the converters are registered."""

    _mlpfast_hook = True  # how a reloaded module recognises an earlier one

    def find_spec(self, name, path, target=None):
        if name != "skl2onnx" or _registered:
            return None
        for finder in list(sys.meta_path):
            if getattr(finder, "_mlpfast_hook", False) or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _RegisteringLoader(spec.loader)
                return spec
        return None


def _register_skl2onnx() -> None:
    # With skl2onnx, its to_onnx / convert_sklearn convert pipelines holding these estimators
    # (see ._skl2onnx): registered now when it is imported already, else when it is.
    if "skl2onnx" in sys.modules:
        _register_converters()
    elif not any(getattr(f, "_mlpfast_hook", False) for f in sys.meta_path):
        sys.meta_path.insert(0, _WhenSkl2onnxLoads())


_register_skl2onnx()


def restore(mlp: MLP, meta: dict, where: str, limit: int) -> Any:
    """The estimator a model file describes, around its network (see :mod:`mlpfast.io`);
    its arrays may take ``limit`` bytes (see :func:`mlpfast._fields.allocation_limit`)."""
    name, params, fitted = read(meta, where, limit)
    classes = {cls.__name__: cls for cls in (MLPClassifier, MLPRegressor)}
    if name not in classes:
        raise unknown(name, list(classes), where)
    return classes[name]._from_file_state(mlp, params, fitted, where)
