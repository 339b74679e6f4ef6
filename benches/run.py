"""The benchmark of ../shared/BENCHMARKS.md: mlpfast against numpy, JAX, scikit-learn, PyTorch.

Run from the repository root, after ``pip install ".[bench]"`` (a release build):

    python benches/run.py                 # every section below
    python benches/run.py --main          # the training table, predict, latency, memory
    python benches/run.py --main --only tiny mnist --runs 7
    python benches/run.py --sweep         # mnist with every activation
    python benches/run.py --latency       # one-row predict: native, estimator, onnxruntime
    python benches/run.py --gemm          # faer's GEMM kernel against numpy's, product by product
    python benches/run.py --gemm --only tiny mnist
    python benches/run.py --contention    # threads with a busy core (threads_bench.py)
    python benches/run.py --gridsearch    # GridSearchCV with n_jobs=1 / 2 and on dask
    python benches/run.py --report-only   # RESULTS.md and the README's figures, no measuring

The main section trains each workload by every contender (workloads.py, jax_train.py) in one
process, the contenders interleaved run after run (timing.py); the table quotes medians,
against the targets of BENCHMARKS.md and numpy's GEMM peak (best of 5 products at 4096³,
float32 and float64). It also times ``predict`` on the mnist model against numpy's forward
pass, and peak memory during the mnist fit (each contender in a fresh subprocess). ``--only``
names the workloads to run (and the parts ``predict``, ``latency``, ``memory`` of the main
section; ``--gemm`` and ``--contention`` take the workloads); the others keep their figures.

The GEMM section (gemm_bench.py) times faer's kernel, the one mlpfast runs on one thread per
product, against numpy's with one and with two BLAS threads on every product of a training
step of every workload, in float32 and float64; report.py sets the products' floor (all of a
run's products spread perfectly over mlpfast's threads) beside mlpfast's training time and the
times the targets ask for.

Results go to ``benches/results.json``, merged with what earlier runs measured (a section or
workload run again replaces its old figures, each keeping the date it was measured on); then
``benches/RESULTS.md`` and the figures between the README's ``results`` markers are written
anew from all of it (report.py).

These machines may set ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``, which pin numpy's
OpenBLAS to its AVX2 kernel; this script starts itself again without them (below, before
numpy loads), so that numpy runs on its best kernel, and records what it removed.
"""

from __future__ import annotations

import os
import sys

# The settings that pin OpenBLAS's kernel; OpenBLAS reads them when it loads, so they must be
# gone before anything imports numpy. The restarted process (and every subprocess it starts)
# runs without them; REMOVED_VAR tells it what they were, for results.json.
OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
REMOVED_VAR = "MLPFAST_BENCH_REMOVED_ENV"

if __name__ == "__main__" and any(name in os.environ for name in OPENBLAS_PINS):
    _env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_PINS}
    _env[REMOVED_VAR] = ";".join(f"{k}={os.environ[k]}" for k in OPENBLAS_PINS if k in os.environ)
    os.execve(sys.executable, [sys.executable, *sys.argv], _env)

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

import mlpfast  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))

import gemm_bench  # noqa: E402
import latency  # noqa: E402
import machine  # noqa: E402
import memory  # noqa: E402
import regularization  # noqa: E402
import report  # noqa: E402
import sweep  # noqa: E402
import threads_bench  # noqa: E402
import workloads as wl  # noqa: E402
from timing import interleave, medians, with_threads  # noqa: E402

HERE = Path(__file__).resolve().parent
README = HERE.parent / "README.md"
SECTIONS = ("main", "gemm", "sweep", "regularization", "latency", "contention", "gridsearch")
PARTS = ("predict", "latency", "memory")  # of the main section, besides the workloads


def have(module: str) -> bool:
    """True when ``module`` imports."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def available(args) -> dict[str, bool]:
    """Which optional contenders take part: installed, and not turned off."""
    return {
        "sklearn": not args.no_sklearn and have("sklearn"),
        "torch": not args.no_torch and have("torch"),
        "jax": not args.no_jax and have("jax"),
        "onnx": not args.no_onnx and have("onnx") and have("onnxruntime"),
    }


def blas_environment() -> dict:
    """The OpenBLAS pins this process was started without (see the top), and any still set."""
    removed = os.environ.get(REMOVED_VAR, "")
    return {
        "removed": dict(item.split("=", 1) for item in removed.split(";") if item),
        "set": {k: os.environ[k] for k in OPENBLAS_PINS if k in os.environ},
    }


def contenders(w: wl.Workload, X, y, params, use: dict[str, bool]) -> dict:
    """name -> setup(); setup() prepares a contender (untimed) and returns what to time."""

    def mlpfast_setup(threads: int | None = None):
        model = wl.mlpfast_model(w, params)
        fn = lambda: wl.train_mlpfast(w, model, X, y)  # noqa: E731
        return fn if threads is None else with_threads(threads, fn)

    out = {
        "mlpfast": mlpfast_setup,
        "numpy": lambda: lambda: wl.train_numpy(w, X, y, params),
    }
    if use["jax"]:
        import jax_train

        trainer = jax_train.JaxTrainer(w, X, y)
        out["jax_step"] = lambda: trainer.prepare("step", params)
        out["jax_scan"] = lambda: trainer.prepare("scan", params)
    out["mlpfast_1t"] = lambda: mlpfast_setup(threads=1)
    if use["sklearn"]:

        def sklearn_setup():
            model = wl.sklearn_model(w)
            return lambda: wl.train_sklearn(w, model, X, y)

        out["sklearn"] = sklearn_setup
    if use["torch"]:

        def torch_setup():
            net, Xt, yt = wl.torch_setup(w, params, X, y)
            return lambda: wl.train_torch(w, net, Xt, yt)

        out["torch"] = torch_setup
    return out


def run_workload(w: wl.Workload, runs: int, use: dict[str, bool], peak: float) -> dict:
    """Median seconds per contender, contenders interleaved run by run; ``peak`` is numpy's
    GEMM peak of the workload's dtype, measured in this run."""
    X, y = w.data()
    params = wl.init_params(w)
    times = interleave(contenders(w, X, y, params, use), runs)
    seconds = medians(times)
    return {
        "date": today(),
        "runs": runs,
        "dtype": w.dtype,
        "seconds": seconds,
        "all_seconds": times,
        "gflops": w.flops_per_epoch() * w.epochs / seconds["mlpfast"] / 1e9,
        "gemm_peak_gflops": peak,
        "numpy_blas": machine.numpy_blas(),
    }


def run_predict(runs: int) -> dict:
    """predict on the mnist model over its 60,000 rows, against numpy's forward pass."""
    w = wl.BY_NAME["mnist"]
    X, _ = w.data()
    params = wl.init_params(w)
    model = wl.mlpfast_model(w, params)

    def numpy_forward():
        a = X
        for i, (W, b) in enumerate(params):
            a = a @ W + b
            if i < len(params) - 1:
                a = np.maximum(a, 0)
        return a.argmax(axis=1)

    # Same model, same answers (float32 rounding may flip a near tie, nothing more).
    agree = np.mean(model.predict(X) == numpy_forward())
    assert agree > 0.999, f"mlpfast and numpy predictions agree on only {agree:.4f}"
    times = interleave(
        {"mlpfast": lambda: lambda: model.predict(X), "numpy": lambda: numpy_forward}, runs
    )
    seconds = medians(times)
    return {
        "date": today(),
        "runs": runs,
        "rows": X.shape[0],
        "mlpfast_seconds": seconds["mlpfast"],
        "numpy_seconds": seconds["numpy"],
    }


def today() -> str:
    return datetime.date.today().isoformat()


def wanted(args, item: str) -> bool:
    """Whether ``--only`` (if given) names this workload or part."""
    return args.only is None or item in args.only


def measure_gemm(results: dict) -> dict:
    """numpy's GEMM peak, float32 and float64, into results["machine"]; returns the peaks."""
    gemm = {"date": today()}
    for dtype in ("float32", "float64"):
        gemm[dtype] = machine.gemm_peak(np.dtype(dtype))
    results["machine"]["gemm"] = gemm
    results["machine"]["gemm_peak_gflops"] = {d: gemm[d]["gflops"] for d in ("float32", "float64")}
    print(f"GEMM peak: {results['machine']['gemm_peak_gflops']}", flush=True)
    return results["machine"]["gemm_peak_gflops"]


def run_main(results: dict, args, use: dict[str, bool]) -> None:
    """The training table (merged into ``results`` workload by workload), predict, memory."""
    chosen = [w for w in wl.WORKLOADS if wanted(args, w.name)]
    if chosen:
        peaks = measure_gemm(results)
    done = results.setdefault("workloads", {})
    for w in chosen:
        r = run_workload(w, args.runs, use, peaks[w.dtype])
        done[w.name] = r
        s = r["seconds"]
        print(
            f"{w.name:9s} "
            + "  ".join(f"{k} {v:.3f}s" for k, v in s.items())
            + f"  numpy/mlpfast {s['numpy'] / s['mlpfast']:.2f}",
            flush=True,
        )
    results["workloads"] = {w.name: done[w.name] for w in wl.WORKLOADS if w.name in done}
    if wanted(args, "predict"):
        results["predict"] = run_predict(args.runs)
        print(f"predict: {results['predict']}", flush=True)
    if wanted(args, "memory"):
        results["memory"] = {"date": today(), "contenders": memory.run(__file__, use["sklearn"])}
        print(f"memory: {results['memory']}", flush=True)


def run_latency(results: dict, args, use: dict[str, bool]) -> None:
    """The one-row latency section."""
    section = latency.run(args.runs, use)
    section["date"] = today()
    results["latency"] = section
    print(f"latency (µs): {section['us']}", flush=True)


def run_sweep(results: dict, args) -> None:
    """The activation sweep."""
    results["sweep"] = sweep.run(args.runs)
    for act, s in results["sweep"]["seconds"].items():
        print(f"sweep {act:10s} mlpfast {s['mlpfast']:.3f}s numpy {s['numpy']:.3f}s", flush=True)


def run_regularization(results: dict, args) -> None:
    """Dropout's cost on the mnist workload."""
    results["regularization"] = regularization.run(args.runs)
    for name, s in results["regularization"]["seconds"].items():
        print(f"regularization {name:12s} {s:.3f}s", flush=True)


def run_gemm(results: dict, args) -> None:
    """faer's GEMM kernel against numpy's on every product, merged workload by workload."""
    names = [w.name for w in wl.WORKLOADS if wanted(args, w.name)]
    if not names:
        return
    section = results.get("gemm", {"workloads": {}})
    section.update(date=today(), numpy_blas=machine.numpy_blas())
    for name in names:
        r = gemm_bench.run_workload(wl.BY_NAME[name])
        section["workloads"][name] = r
        head = r["dtypes"][r["dtype"]]
        totals = {c: gemm_bench.step_seconds(head, c) * 1e6 for c in gemm_bench.CONTENDERS}
        print(
            f"gemm {name:9s} {r['dtype']} step products: "
            + "  ".join(f"{c} {us:,.1f} µs" for c, us in totals.items()),
            flush=True,
        )
    section["workloads"] = {
        w.name: section["workloads"][w.name] for w in wl.WORKLOADS if w.name in section["workloads"]
    }
    results["gemm"] = section


def run_contention(results: dict, args) -> None:
    """Threads with a busy core, merged workload by workload."""
    names = [w.name for w in wl.WORKLOADS if wanted(args, w.name)]
    section = results.get("contention", {"workloads": {}})
    section.update(date=today(), runs=args.runs, default_threads=mlpfast.get_num_threads())
    section["workloads"].update(threads_bench.run_contention(names, args.runs))
    section["workloads"] = {
        w.name: section["workloads"][w.name] for w in wl.WORKLOADS if w.name in section["workloads"]
    }
    results["contention"] = section


def run_gridsearch(results: dict, args, use: dict[str, bool]) -> None:
    """GridSearchCV in parallel workers (needs scikit-learn)."""
    if not use["sklearn"]:
        print("gridsearch: skipped (scikit-learn is not installed)")
        return
    section = threads_bench.run_gridsearch(args.runs)
    section.update(date=today(), runs=args.runs)
    results["gridsearch"] = section
    print(f"gridsearch: {section['seconds']}", flush=True)


def backfill(results: dict) -> None:
    """Gives figures from before every part kept its own date, run count and GEMM peak those
    of the run that measured them (the machine's), before this run replaces the machine."""
    old = results.get("machine")
    if old is None:
        return
    for r in results.get("workloads", {}).values():
        r.setdefault("date", old["date"])
        r.setdefault("runs", results.get("runs"))
        r.setdefault("gemm_peak_gflops", old["gemm_peak_gflops"][r["dtype"]])
    for key in ("predict", "memory"):
        if key in results:
            results[key].setdefault("date", old["date"])


def describe_machine(results: dict, use: dict[str, bool]) -> None:
    """This run's machine and software into results["machine"], keeping the last GEMM peak
    (measured by the main section) until it is measured again."""
    backfill(results)
    old = results.get("machine", {})
    results["machine"] = machine.describe(use, blas_environment())
    for key in ("gemm", "gemm_peak_gflops"):
        if key in old:
            results["machine"][key] = old[key]
    info = results["machine"]
    print(
        f"machine: {info['cpu']}, {info['simd']}, BLAS environment {info['blas_environment']}, "
        f"thread pools {info['threadpools']}",
        flush=True,
    )


def write_reports(results: dict) -> str:
    """RESULTS.md and the README's figures, from ``results``; returns RESULTS.md's text."""
    text = report.results_md(results)
    (HERE / "RESULTS.md").write_text(text)
    if not report.update_readme(README, report.readme_block(results)):
        print(f"README: no results markers found in {README}; its figures were not updated")
    return text


def parse(argv: list[str]):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per contender")
    names = [w.name for w in wl.WORKLOADS] + list(PARTS)
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        choices=names,
        metavar="NAME",
        help=f"workloads or parts to run: {', '.join(names)}",
    )
    parser.add_argument(
        "--main", action="store_true", help="training table, predict, latency, memory"
    )
    parser.add_argument(
        "--gemm", action="store_true", help="faer's GEMM kernel against numpy's, per product"
    )
    parser.add_argument("--sweep", action="store_true", help="mnist with every activation")
    parser.add_argument(
        "--regularization", action="store_true", help="mnist with and without dropout"
    )
    parser.add_argument("--latency", action="store_true", help="one-row predict latency")
    parser.add_argument("--contention", action="store_true", help="threads with a busy core")
    parser.add_argument("--gridsearch", action="store_true", help="GridSearchCV in workers")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="write RESULTS.md and the README's figures from results.json",
    )
    for name in ("sklearn", "torch", "jax", "onnx"):
        parser.add_argument(f"--no-{name}", action="store_true", help=f"leave {name} out")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if args.memory_probe:
        memory.probe(args.memory_probe)
        return 0
    path = HERE / "results.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    if not args.report_only:
        measure(results, args)
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(write_reports(results))
    return 0


def measure(results: dict, args) -> None:
    """Runs the sections the flags choose (all of them without any), into ``results``."""
    chosen = {s for s in SECTIONS if getattr(args, s)} or set(SECTIONS)
    use = available(args)
    describe_machine(results, use)
    if "main" in chosen:
        run_main(results, args, use)
    # --latency runs it; as a part of the main section (or of everything), --only may leave it out.
    if args.latency or ("main" in chosen and wanted(args, "latency")):
        run_latency(results, args, use)
    if "gemm" in chosen:
        run_gemm(results, args)
    if "sweep" in chosen:
        run_sweep(results, args)
    if "regularization" in chosen:
        run_regularization(results, args)
    if "contention" in chosen:
        run_contention(results, args)
    if "gridsearch" in chosen:
        run_gridsearch(results, args, use)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
