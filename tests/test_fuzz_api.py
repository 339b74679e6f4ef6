"""Property-based runs of the whole public API: every call returns or raises a documented error.

tests/fuzz_api_worker.py draws plans (arrays of random shapes, dtypes, layouts and values,
settings in and out of range, wrong types) and runs them against MLP, the layers, the losses,
fit, the estimators and the model files, checking every result and that a refused call
leaves the model as it was. Each property runs in its own subprocess with a memory limit
(the worker sets RLIMIT_AS), so that an abort or a runaway allocation fails its test instead
of ending pytest; the examples are derandomized, the same in every run. A failure shows the
worker's output, which holds a Python reproducer of the failing example; a crash shows the
call that was running (the worker writes it to FUZZ_LAST_CALL before every call).
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("hypothesis")
pytest.importorskip("sklearn")

WORKER = Path(__file__).with_name("fuzz_api_worker.py")
_spec = importlib.util.spec_from_file_location("fuzz_api_worker", WORKER)
worker = sys.modules["fuzz_api_worker"] = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(worker)
BUDGETS = {name: budget for name, (_, budget) in worker.PROPERTIES.items()}
TIMEOUT = 600  # seconds a property may take before its run counts as hung


def test_budgets_cover_2000_examples():
    assert sum(BUDGETS.values()) >= 2000, BUDGETS


@pytest.mark.parametrize("prop", sorted(BUDGETS))
def test_api_property(prop: str, tmp_path: Path):
    last_call = tmp_path / "last_call.py"
    try:
        proc = subprocess.run(
            [sys.executable, str(WORKER), prop],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env={**os.environ, "FUZZ_LAST_CALL": str(last_call)},
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(
            f"{prop}: no result within {TIMEOUT} s; the call running was the last line of:\n"
            f"{_read(last_call)}\n--- output ---\n{_text(exc.stdout)}{_text(exc.stderr)}"
        )
    output = f"--- stdout ---\n{proc.stdout}\n--- stderr ---\n{proc.stderr}"
    if proc.returncode < 0:
        name = signal.Signals(-proc.returncode).name
        pytest.fail(
            f"{prop}: the worker died by signal {-proc.returncode} ({name}) in the last line "
            f"of this reproducer:\n{_read(last_call)}\n{output}"
        )
    assert proc.returncode == 0, f"{prop}: the worker failed (exit {proc.returncode})\n{output}"
    done = re.search(rf"fuzz_api_worker: {prop}: (\d+) examples passed", proc.stdout)
    assert done, f"{prop}: the worker did not report its example count\n{output}"
    assert int(done.group(1)) >= BUDGETS[prop], f"{prop}: {done.group(0)}, budget {BUDGETS[prop]}"


def _read(path: Path) -> str:
    return path.read_text("utf-8", "replace") if path.exists() else "(no call recorded)"


def _text(data: str | bytes | None) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data or ""
