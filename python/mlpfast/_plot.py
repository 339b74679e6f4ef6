"""``plot_history``: loss and validation curves of a training run, drawn with matplotlib."""

from __future__ import annotations

import os
from typing import Any

_LABELS = {"val_accuracy": "validation accuracy", "val_r2": "validation R²"}


def _curves(history: Any) -> tuple[list[float], list[float] | None, str | None, list | None]:
    """(loss, val_loss, metric name, metric values) of a history dict or fitted estimator."""
    if isinstance(history, dict):
        if "loss" not in history:
            raise ValueError(
                "plot_history: expected a history dict with a 'loss' list (as MLP.fit "
                f"returns), got the keys {sorted(history)}"
            )
        metric = next((k for k in _LABELS if k in history), None)
        return (
            list(history["loss"]),
            list(history["val_loss"]) if "val_loss" in history else None,
            metric,
            list(history[metric]) if metric else None,
        )
    curve = getattr(history, "loss_curve_", None)
    if curve is None:
        raise ValueError(
            "plot_history: expected an MLP.fit history dict or an estimator fitted with "
            f"solver 'sgd' or 'adam' (with loss_curve_), got {type(history).__name__}"
        )
    scores = getattr(history, "validation_scores_", None)
    val_loss = getattr(history, "validation_loss_curve_", None)  # mlpfast's estimators
    metric = None
    if scores is not None:
        metric = "val_accuracy" if hasattr(history, "classes_") else "val_r2"
    return (
        list(curve),
        list(val_loss) if val_loss is not None else None,
        metric,
        list(scores) if scores is not None else None,
    )


def plot_history(history: Any, path: str | os.PathLike | None = None, *, title: str | None = None):
    """Draws the loss curve of a training run, and its validation curves when it has them.

    Parameters
    ----------
    history : dict or fitted estimator
        The dict ``MLP.fit`` returns (``loss``, and with validation data ``val_loss`` and
        ``val_accuracy`` or ``val_r2``), or a fitted ``mlpfast.sklearn`` (or scikit-learn)
        MLP estimator, whose ``loss_curve_``, and with early stopping
        ``validation_scores_`` (and mlpfast's ``validation_loss_curve_``), are drawn.
    path : str or os.PathLike, optional
        Where to save the figure as a PNG.
    title : str, optional
        The figure's title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure: the loss per epoch (training, and validation when present) and, when
        the run was validated, the validation score per epoch beside it. It is built
        without pyplot, so no window opens and no global state changes.

    Raises
    ------
    ImportError
        matplotlib is not installed (``pip install matplotlib``).
    """
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(
            "plot_history needs matplotlib: pip install matplotlib (or, in mlpfast's source "
            "tree, pip install '.[plot]')"
        ) from exc
    loss, val_loss, metric, scores = _curves(history)
    panels = 2 if metric else 1
    fig = Figure(figsize=(5.0 * panels, 3.6), layout="constrained")
    ax = fig.add_subplot(1, panels, 1)
    epochs = range(1, len(loss) + 1)
    ax.plot(epochs, loss, label="training loss")
    if val_loss is not None:
        ax.plot(range(1, len(val_loss) + 1), val_loss, label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    # A loss falls by orders of magnitude, most of it in the first epochs: a linear axis
    # squashes everything after them into a line. Log, unless some loss is 0 (a hinge loss).
    if all(v > 0 for v in loss) and all(v > 0 for v in val_loss or ()):
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    ax.legend()
    if metric and scores is not None:
        ax2 = fig.add_subplot(1, 2, 2)
        ax2.plot(range(1, len(scores) + 1), scores, color="tab:green", label=_LABELS[metric])
        best = max(range(len(scores)), key=scores.__getitem__, default=None)
        if best is not None:
            ax2.axvline(best + 1, color="0.6", linestyle="--", label=f"best (epoch {best + 1})")
        ax2.set_xlabel("epoch")
        ax2.set_ylabel(_LABELS[metric])
        ax2.grid(alpha=0.3)
        ax2.legend()
    if title:
        fig.suptitle(title)
    if path is not None:
        fig.savefig(path, format="png", dpi=100)
    return fig
