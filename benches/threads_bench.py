"""Threads under load: the ``--contention`` and ``--gridsearch`` scenarios of benches/run.py.

* **contention**: every workload trained with mlpfast's default threads and with one thread,
  on a quiet machine (plus ``set_num_threads(8)``, more threads than cores) and with one busy
  process pinned to one core, as a browser or another job would keep it busy.
* **gridsearch**: ``GridSearchCV`` over the digits data set with ``n_jobs=1`` and ``n_jobs=2``
  (joblib's loky workers), and through joblib's dask backend on a two-worker ``LocalCluster``
  when dask is installed; scikit-learn's own MLP alongside. Workers are started (and warmed)
  before the timed runs, as they are in a session that runs several searches.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

import workloads as wl
from timing import interleave, medians, with_threads


@contextmanager
def busy_core():
    """Another process spinning on core 0 for the duration (pinned there when possible)."""
    code = (
        "import os\n"
        "try:\n    os.sched_setaffinity(0, {0})\nexcept (AttributeError, OSError):\n    pass\n"
        "while True:\n    pass\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code])
    time.sleep(0.5)
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def trainer(w: wl.Workload, X, y, params, threads: int | None):
    """A setup for ``interleave``: a fresh model, trained with ``threads`` (None: default)."""

    def prepare():
        model = wl.mlpfast_model(w, params)
        fn = lambda: wl.train_mlpfast(w, model, X, y)  # noqa: E731
        return fn if threads is None else with_threads(threads, fn)

    return prepare


def run_contention(names: list[str] | None, runs: int) -> dict:
    """Per workload (those of ``names``; all when None): medians quiet (default, 1 thread,
    8 threads) and busy (default, 1)."""
    out = {}
    for w in wl.WORKLOADS:
        if names is not None and w.name not in names:
            continue
        X, y = w.data()
        params = wl.init_params(w)

        def setup(threads: int | None, w=w, X=X, y=y, params=params):
            return trainer(w, X, y, params, threads)

        quiet = interleave({"default": setup(None), "one": setup(1), "eight": setup(8)}, runs)
        with busy_core():
            busy = interleave({"default": setup(None), "one": setup(1)}, runs)
        out[w.name] = {
            "quiet": medians(quiet),
            "busy": medians(busy),
            "all_seconds": {"quiet": quiet, "busy": busy},
        }
        q, b = out[w.name]["quiet"], out[w.name]["busy"]
        print(
            f"{w.name:9s} quiet default {q['default']:.3f}s 1t {q['one']:.3f}s "
            f"8t {q['eight']:.3f}s | busy default {b['default']:.3f}s 1t {b['one']:.3f}s "
            f"ratio {b['default'] / b['one']:.2f}",
            flush=True,
        )
    return out


GRID = {"hidden_layer_sizes": [(64,), (128,), (64, 64)], "alpha": [1e-4, 1e-3, 1e-2]}


def run_gridsearch(runs: int) -> dict:
    """Seconds per grid search (medians), by estimator and by joblib backend."""
    import joblib
    from sklearn import neural_network as sk
    from sklearn.datasets import load_digits
    from sklearn.model_selection import GridSearchCV

    from mlpfast import sklearn as mf

    X, y = load_digits(return_X_y=True)
    X = X / 16.0

    def search(module, n_jobs: int, backend: str | None = None, threads: int | None = None):
        def run():
            if threads is not None:
                return with_threads(threads, lambda: search(module, n_jobs, backend)())()
            est = module.MLPClassifier(max_iter=50, random_state=0)
            gs = GridSearchCV(est, GRID, cv=3, n_jobs=n_jobs)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                if backend is None:
                    gs.fit(X, y)
                else:
                    with joblib.parallel_backend(backend):
                        gs.fit(X, y)
            return gs.best_score_

        return run

    setups = {
        "mlpfast n_jobs=1": search(mf, 1),
        "mlpfast n_jobs=1, one thread per fit": search(mf, 1, threads=1),
        "mlpfast n_jobs=2": search(mf, 2),
        "sklearn n_jobs=1": search(sk, 1),
        "sklearn n_jobs=2": search(sk, 2),
    }
    cluster = client = None
    try:
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        )
        client = distributed.Client(cluster)
        setups["mlpfast dask, 2 workers"] = search(mf, 2, "dask")
        setups["sklearn dask, 2 workers"] = search(sk, 2, "dask")
    except ImportError:
        pass
    try:
        # Start and warm every pool of workers (and each worker's imports) first.
        scores = {name: fn() for name, fn in setups.items()}
        times = interleave({name: (lambda fn=fn: fn) for name, fn in setups.items()}, runs)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    return {
        "fits": 3 * len(GRID["hidden_layer_sizes"]) * len(GRID["alpha"]) + 1,
        "cores": os.cpu_count(),
        "seconds": medians(times),
        "best_score": scores,
        "all_seconds": times,
    }


def report_contention(section: dict) -> list[str]:
    """The contention table and what it shows, for RESULTS.md."""
    lines = [
        "## Threads on a busy machine",
        "",
        f"`python benches/run.py --contention` on {section['date']}: each workload trained with "
        f"mlpfast's default threads ({section['default_threads']} here) and with "
        "`set_num_threads(1)`, on a quiet machine (and with `set_num_threads(8)`, more threads "
        "than cores) and while another process spins on core 0; medians of "
        f"{section['runs']} interleaved runs. Targets: busy default / 1 thread ≤ 1.15; quiet "
        "default / 1 thread ≤ 1.05 everywhere and ≤ 0.67 (1.5× faster) on `mnist` and `wide`; "
        "8 threads / default ≤ 1.15.",
        "",
        "| workload | quiet default s | quiet 1 thread s | default / 1 | 8 threads s "
        "| 8 / default | busy default s | busy 1 thread s | busy default / 1 | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in section["workloads"].items():
        q, b = r["quiet"], r["busy"]
        quiet_ratio = q["default"] / q["one"]
        eight = q["eight"] / q["default"]
        busy_ratio = b["default"] / b["one"]
        quiet_target = 1 / 1.5 if name in ("mnist", "wide") else 1.05
        met = busy_ratio <= 1.15 and quiet_ratio <= quiet_target and eight <= 1.15
        lines.append(
            f"| {name} | {q['default']:.3f} | {q['one']:.3f} | **{quiet_ratio:.2f}** "
            f"| {q['eight']:.3f} | **{eight:.2f}** | {b['default']:.3f} | {b['one']:.3f} "
            f"| **{busy_ratio:.2f}** | {'yes' if met else 'no'} |"
        )
    return [*lines, ""]


def report_gridsearch(section: dict) -> list[str]:
    """The grid-search table, for RESULTS.md."""
    s = section["seconds"]
    lines = [
        "## Grid search in parallel workers",
        "",
        f"`python benches/run.py --gridsearch` on {section['date']}: `GridSearchCV` over the "
        f"digits data set (9 settings × 3 folds, then the refit: {section['fits']} fits of "
        "`MLPClassifier(max_iter=50)`), on "
        f"{section['cores']} cores; medians of {section['runs']} interleaved runs with the "
        "workers already started. No thread setting by the user: joblib's loky workers and "
        "dask's each get `OMP_NUM_THREADS` from their pool (1 here), which mlpfast follows.",
        "",
        "| search | seconds | speed-up over n_jobs=1 | best score |",
        "|---|---|---|---|",
    ]
    for name, sec in s.items():
        base = s["mlpfast n_jobs=1" if name.startswith("mlpfast") else "sklearn n_jobs=1"]
        lines.append(
            f"| {name} | {sec:.3f} | **{base / sec:.2f}** | {section['best_score'][name]:.4f} |"
        )
    one = s.get("mlpfast n_jobs=1, one thread per fit")
    if one is not None:
        intra = one / s["mlpfast n_jobs=1"]
        lines += [
            "",
            f"With `n_jobs=1`, one thread per fit takes {intra:.2f}× the time of the default "
            f"threads. Two single-thread workers can therefore be at most 2 / {intra:.2f} = "
            f"{2 / intra:.2f}× faster than `n_jobs=1`, before joblib's dispatch and the refit "
            f"in the parent; against one thread per fit, `n_jobs=2` is "
            f"{one / s['mlpfast n_jobs=2']:.2f}× as fast.",
        ]
    return [*lines, ""]
