"""The progress line ``fit(verbose=True)`` prints after every epoch.

One line per epoch on standard output: loss, validation figures, samples per second, elapsed
and remaining time. When tqdm is installed, an epoch bar runs on standard error as well and
the lines are written above it.
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


class Progress:
    """Prints one line per epoch; called by ``MLP.fit`` with the epoch's figures."""

    def __init__(self, epochs: int, metric: str) -> None:
        self.metric = metric
        self.bar = None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            tqdm = None
        if tqdm is not None and epochs > 0:
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
