"""The activation sweep: the ``mnist`` workload trained with every hidden activation.

mlpfast and numpy's contender (workloads.train_numpy) train 784-256-128-10 (batch 128, 60,000
rows, float32, one epoch of SGD) with identity, sigmoid, tanh, relu, leaky_relu and elu, and
with maxout, all interleaved run by run in one process. The target is each elementwise
activation's mlpfast time within 10% of relu's; maxout is reported apart, since its hidden
layers do ``MAXOUT_PIECES`` (2) times relu's products.
"""

from __future__ import annotations

import dataclasses
import datetime

import workloads as wl
from timing import interleave, medians

ELEMENTWISE = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu")
ACTIVATIONS = (*ELEMENTWISE, "maxout")


def setups(w: wl.Workload, X, y) -> dict:
    """The two contenders of one activation, for ``interleave``."""
    params = wl.init_params(w)

    def mlpfast_setup():
        model = wl.mlpfast_model(w, params)
        return lambda: wl.train_mlpfast(w, model, X, y)

    return {
        f"mlpfast {w.activation}": mlpfast_setup,
        f"numpy {w.activation}": lambda: lambda: wl.train_numpy(w, X, y, params),
    }


def run(runs: int, base: str = "mnist") -> dict:
    """The sweep section of results.json: medians per activation and contender."""
    base_w = wl.BY_NAME[base]
    X, y = base_w.data()
    variants = {act: dataclasses.replace(base_w, activation=act) for act in ACTIVATIONS}
    contenders = {}
    for w in variants.values():
        contenders.update(setups(w, X, y))
    times = interleave(contenders, runs)
    med = medians(times)
    return {
        "date": datetime.date.today().isoformat(),
        "runs": runs,
        "workload": base,
        "seconds": {
            act: {"mlpfast": med[f"mlpfast {act}"], "numpy": med[f"numpy {act}"]}
            for act in ACTIVATIONS
        },
        "gflop_per_epoch": {act: w.flops_per_epoch() / 1e9 for act, w in variants.items()},
        "all_seconds": times,
    }
