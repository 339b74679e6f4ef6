"""The ``--gemm`` section: faer's GEMM kernel against numpy's on each training product.

mlpfast trains with faer's GEMM kernel, every product on one thread (its threads split the
work between products, not inside one). For each workload of workloads.py, in float32 and
float64 (the workload's own dtype is the headline, the other is extra information), every
product of one SGD step is timed alone:

* **faer**: ``mlpfast._core._gemm_seconds``, the kernel mlpfast calls, on the calling thread;
* **numpy 1 thread / 2 threads**: ``np.matmul(A, B, out=out)`` with ``A = a.T`` / ``B = b.T``
  views where the product reads its operand transposed (as the numpy contender's ``.T @``
  does), under ``threadpoolctl.threadpool_limits(t, user_api="blas")``.

Each figure is the best of ``reps`` runs (30 for small products, 8 for the large ones);
the three contenders take turns shape by shape, ``ROUNDS`` times, each batch of runs started
after timing.SETTLE seconds (numpy's OpenBLAS threads spin for a while after a product), and
the best over the rounds is kept. numpy's runs are timed from Python, so they include the
call of ``np.matmul`` (about a microsecond); faer's are timed in Rust around the kernel.

A dense layer (in → out) on a batch of B rows does three products: forward ``x·W``
(B × in by in × out), weight gradient ``xᵀ·dy`` (in × B by B × out, x read transposed) and
input gradient ``dy·Wᵀ`` (B × out by out × in, W read transposed). The first layer has no
input gradient: mlpfast never computes it, and it is counted nowhere. When the batch does not
divide the samples, the last step of each epoch has fewer rows; its products are timed too, so
that the *GEMM floor* (the products alone, both cores perfectly used) counts every step.
"""

from __future__ import annotations

import datetime
import math
import time
from dataclasses import dataclass

import numpy as np
import workloads as wl
from timing import SETTLE

import mlpfast
from mlpfast import _core

DTYPES = ("float32", "float64")
NUMPY_THREADS = (1, 2)
ROUNDS = 2  # turns of faer, numpy 1 thread, numpy 2 threads per shape
SMALL_REPS, LARGE_REPS = 30, 8
LARGE_FLOP = 2e8  # products of more FLOPs than this (wide's) get LARGE_REPS runs


@dataclass(frozen=True)
class Product:
    """One GEMM of a training step: dst (m × n) = a (m × k) · b (k × n), ``a`` stored k × m
    and read transposed when ``ta``, ``b`` stored n × k when ``tb``."""

    layer: int  # 0-based index of the dense layer
    name: str  # "x·W", "xᵀ·dy" or "dy·Wᵀ"
    m: int
    k: int
    n: int
    ta: bool
    tb: bool

    @property
    def flop(self) -> int:
        return 2 * self.m * self.k * self.n

    @property
    def shape(self) -> tuple[int, int, int, bool, bool]:
        return (self.m, self.k, self.n, self.ta, self.tb)

    @property
    def reps(self) -> int:
        return LARGE_REPS if self.flop > LARGE_FLOP else SMALL_REPS


def products(w: wl.Workload, rows: int | None = None) -> list[Product]:
    """The products of one step of ``w`` on ``rows`` rows (default: a full batch), layer by
    layer: x·W, xᵀ·dy, and dy·Wᵀ for every layer but the first."""
    if w.activation == "maxout":
        raise ValueError("the GEMM section covers elementwise activations (maxout: k pieces)")
    b = w.batch if rows is None else rows
    out = []
    for i, (n_in, n_out) in enumerate(zip(w.sizes[:-1], w.sizes[1:])):
        out.append(Product(i, "x·W", b, n_in, n_out, False, False))
        out.append(Product(i, "xᵀ·dy", n_in, b, n_out, True, False))
        if i > 0:
            out.append(Product(i, "dy·Wᵀ", b, n_out, n_in, False, True))
    return out


def steps(w: wl.Workload) -> tuple[int, int]:
    """(full batches per epoch, rows of the last partial batch or 0); steps per epoch are
    ceil(samples / batch)."""
    return w.samples // w.batch, w.samples % w.batch


# ------------------------------------------------------------------------------ measuring


def faer_seconds(p: Product, dtype: str) -> float:
    """faer's best of ``p.reps`` runs, after the pause."""
    time.sleep(SETTLE)
    return _core._gemm_seconds(p.m, p.k, p.n, p.ta, p.tb, dtype, p.reps)


def numpy_operands(p: Product, dtype: str, rng) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A, B (transposed views where the product reads them so) and the output."""
    a = rng.standard_normal((p.k, p.m) if p.ta else (p.m, p.k)).astype(dtype)
    b = rng.standard_normal((p.n, p.k) if p.tb else (p.k, p.n)).astype(dtype)
    return (a.T if p.ta else a), (b.T if p.tb else b), np.empty((p.m, p.n), dtype)


def numpy_seconds(p: Product, operands, threads: int) -> float:
    """numpy's best of ``p.reps`` runs with ``threads`` BLAS threads, after the pause."""
    from threadpoolctl import threadpool_limits

    A, B, out = operands
    best = math.inf
    with threadpool_limits(threads, user_api="blas"):
        time.sleep(SETTLE)
        for _ in range(p.reps):
            start = time.perf_counter()
            np.matmul(A, B, out=out)
            best = min(best, time.perf_counter() - start)
    return best


def measure(p: Product, dtype: str, rng, rounds: int = ROUNDS) -> dict:
    """One product's figures: faer and numpy (1 and 2 threads) taking turns, best of all."""
    operands = numpy_operands(p, dtype, rng)
    best = {"faer": math.inf, **{f"numpy_{t}t": math.inf for t in NUMPY_THREADS}}
    for _ in range(rounds):
        best["faer"] = min(best["faer"], faer_seconds(p, dtype))
        for t in NUMPY_THREADS:
            best[f"numpy_{t}t"] = min(best[f"numpy_{t}t"], numpy_seconds(p, operands, t))
    entry = {
        "layer": p.layer,
        "product": p.name,
        "m": p.m,
        "k": p.k,
        "n": p.n,
        "ta": p.ta,
        "tb": p.tb,
        "flop": p.flop,
        "reps": p.reps,
        "rounds": rounds,
    }
    for name, s in best.items():
        entry[f"{name}_s"] = s
    for name, s in best.items():
        entry[f"{name}_gflops"] = p.flop / s / 1e9
    return entry


def run_workload(w: wl.Workload, dtypes=DTYPES, seed: int = 0) -> dict:
    """One workload's entry of the section: every product of a step in every dtype, and
    those of the last partial batch when there is one."""
    rng = np.random.default_rng(seed)
    full, last = steps(w)
    out = {
        "date": datetime.date.today().isoformat(),
        "dtype": w.dtype,
        "sizes": list(w.sizes),
        "batch": w.batch,
        "samples": w.samples,
        "epochs": w.epochs,
        "full_steps": full,
        "last_rows": last,
        "threads": mlpfast.get_num_threads(),
        "dtypes": {},
    }
    for dtype in dtypes:
        entry = {"products": [measure(p, dtype, rng) for p in products(w)]}
        if last:
            entry["last_products"] = [measure(p, dtype, rng) for p in products(w, last)]
        out["dtypes"][dtype] = entry
    return out


# ------------------------------------------------------------------------ figures from it


CONTENDERS = ("faer", "numpy_1t", "numpy_2t")


def step_seconds(entry: dict, contender: str, key: str = "products") -> float:
    """Seconds of one step's products, one after another (a full batch, or the last)."""
    return sum(p[f"{contender}_s"] for p in entry.get(key, []))


def step_flop(entry: dict, key: str = "products") -> int:
    return sum(p["flop"] for p in entry.get(key, []))


def run_seconds(r: dict, dtype: str, contender: str = "faer") -> float:
    """The products of every step of the training run (all epochs), one after another."""
    entry = r["dtypes"][dtype]
    per_epoch = r["full_steps"] * step_seconds(entry, contender)
    if r["last_rows"]:
        per_epoch += step_seconds(entry, contender, "last_products")
    return r["epochs"] * per_epoch


def floor_seconds(r: dict, dtype: str | None = None) -> float:
    """The GEMM floor: faer's products of the whole run spread perfectly over mlpfast's
    threads (the count recorded with the section)."""
    return run_seconds(r, dtype or r["dtype"]) / r["threads"]
