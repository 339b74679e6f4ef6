"""The cost of dropout and of batch normalization on the mnist workload.

mlpfast trains the ``mnist`` workload (784-256-128-10, relu, batch 128, 60,000 rows, float32,
one epoch of SGD) as it is, with dropout 0.5 after each hidden layer, and with batch
normalization after each hidden layer, interleaved run by run in one process; the target is
each at most 15% slower than the plain step.
"""

from __future__ import annotations

import datetime

import workloads as wl
from timing import interleave, medians

import mlpfast

DROPOUT = 0.5
TARGET = 1.15  # at most this many times the plain fit's time


def run(runs: int, base: str = "mnist") -> dict:
    """The regularization section of results.json: medians with and without each."""
    w = wl.BY_NAME[base]
    X, y = w.data()
    params = wl.init_params(w)

    def setup(dropout: float, batch_norm: bool = False):
        def make():
            model = wl.mlpfast_model(w, params)
            if dropout or batch_norm:
                plain = model
                model = mlpfast.MLP(
                    list(w.sizes), activation=w.activation, loss=w.loss, dtype=w.dtype,
                    seed=0, dropout=dropout, batch_norm=batch_norm,
                )  # fmt: skip
                matrices = [m for m in model.param_layers if not isinstance(m, mlpfast.BatchNorm)]
                for mine, theirs in zip(matrices, plain.param_layers):
                    mine.weight, mine.bias = theirs.weight, theirs.bias
            return lambda: wl.train_mlpfast(w, model, X, y)

        return make

    contenders = {
        "plain": setup(0.0),
        f"dropout {DROPOUT:g}": setup(DROPOUT),
        "batch_norm": setup(0.0, batch_norm=True),
    }
    times = interleave(contenders, runs)
    return {
        "date": datetime.date.today().isoformat(),
        "runs": runs,
        "workload": base,
        "seconds": medians(times),
        "all_seconds": times,
    }
