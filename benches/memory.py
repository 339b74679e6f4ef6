"""Peak memory of the mnist fit: mlpfast, numpy's contender and scikit-learn, each in a fresh
process (``run.py --memory-probe NAME``), which prints its figures as JSON.

The probe loads X first, resets the process's peak resident set (VmHWM), fits once, and
reports the resident set before the fit and its peak during it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import workloads as wl


def rss_mib(field: str) -> float:
    """A memory figure of this process from /proc/self/status (VmRSS, VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def probe(contender: str) -> None:
    """In a fresh process: X of the mnist workload, then one fit; prints the figures as JSON."""
    w = wl.BY_NAME["mnist"]
    X, y = w.data()
    params = wl.init_params(w)
    if contender == "mlpfast":
        model = wl.mlpfast_model(w, params)
        fn = lambda: wl.train_mlpfast(w, model, X, y)  # noqa: E731
    elif contender == "numpy":
        fn = lambda: wl.train_numpy(w, X, y, params)  # noqa: E731
    else:
        clf = wl.sklearn_model(w)
        fn = lambda: wl.train_sklearn(w, clf, X, y)  # noqa: E731
    before = rss_mib("VmRSS")
    # Reset the peak (VmHWM) so that it measures the fit alone.
    Path("/proc/self/clear_refs").write_text("5")
    fn()
    peak = rss_mib("VmHWM")
    print(json.dumps({"x_mib": X.nbytes / 2**20, "before_mib": before, "peak_mib": peak}))


def run(script: str, use_sklearn: bool) -> dict:
    """Peak memory of each contender's mnist fit, each probed by ``script --memory-probe``."""
    out = {}
    names = ["mlpfast", "numpy"] + (["sklearn"] if use_sklearn else [])
    for name in names:
        proc = subprocess.run(
            [sys.executable, script, "--memory-probe", name],
            capture_output=True,
            text=True,
            check=False,
        )
        try:
            out[name] = json.loads(proc.stdout.strip().splitlines()[-1])
        except (IndexError, json.JSONDecodeError):
            out[name] = {"error": proc.stderr.strip()[-300:]}
    return out
