"""The progress line ``fit(verbose=True)`` prints after every epoch.

One line per epoch on standard output: loss, validation figures, samples per second, elapsed
and remaining time. When tqdm is installed and there is somewhere to draw it (standard error
is a terminal, or the fit runs in a notebook), an epoch bar runs there as well and the lines
are written above it. Written to a log file or a pipe, the output is the lines alone: a bar
would leave a carriage-return frame in the log for every update.
"""

from __future__ import annotations

import sys


def _clock(seconds: float) -> str:
    """``1:02:03`` / ``2:03`` / ``3.4s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _is_terminal(stream) -> bool:
    """Whether ``stream`` is an open terminal."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _in_notebook(tqdm_class) -> bool:
    """Whether ``tqdm.auto`` chose its notebook bar (a widget, not carriage returns)."""
    return any(c.__module__ == "tqdm.notebook" for c in tqdm_class.__mro__)


class Progress:
    """Prints one line per epoch; called by ``MLP.fit`` with the epoch's figures."""

    def __init__(self, epochs: int, metric: str) -> None:
        self.metric = metric
        self.bar = None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None and epochs > 0 and (_in_notebook(tqdm) or _is_terminal(sys.stderr)):
            self.bar = tqdm(total=epochs, unit="epoch", file=sys.stderr, leave=False)

    def line(self, info: dict) -> str:
        """The progress line of one epoch."""
        width = len(str(info["epochs"]))
        parts = [f"epoch {info['epoch']:>{width}}/{info['epochs']}", f"loss {info['loss']:.6f}"]
        if "val_loss" in info:
            parts.append(f"val_loss {info['val_loss']:.6f}")
            parts.append(f"{self.metric} {info[self.metric]:.4f}")
        parts.append(f"{info['samples_per_second']:,.0f} samples/s")
        parts.append(f"elapsed {_clock(info['elapsed'])}")
        parts.append(f"remaining {_clock(info['remaining'])}")
        return "  ".join(parts)

    def __call__(self, info: dict) -> None:
        text = self.line(info)
        if self.bar is None:
            print(text, flush=True)
            return
        self.bar.write(text, file=sys.stdout)
        self.bar.update(1)

    def close(self) -> None:
        """Ends the bar (training is over, possibly before its last epoch)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
