"""fit() and predict() read a C-contiguous X in the model's dtype in place: no copy of X.

Measured by the process's peak resident memory (Linux's VmHWM, reset through
/proc/self/clear_refs) in a fresh subprocess: a copy of the 128 MiB X would raise the peak by
that much; reading it in place raises it by the training buffers only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = r"""
import json, sys
from pathlib import Path
import numpy as np
import mlpfast

def status(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
dtype, order, what = sys.argv[1], sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
X = np.asarray(rng.standard_normal((32768, 1024), dtype=np.float32), dtype=dtype, order=order)
y = rng.integers(0, 10, X.shape[0])
model = mlpfast.MLP([1024, 32, 10], dtype="float32", seed=0)
model.predict(X[:10])
before = status("VmRSS")
Path("/proc/self/clear_refs").write_text("5")
if what == "fit":
    model.fit(X, y, epochs=1, batch_size=1024, seed=0)
else:
    model.predict(X)
print(json.dumps({"x_mib": X.nbytes / 2**20, "grew_mib": status("VmHWM") - before}))
"""


def probe(dtype: str, order: str, what: str) -> dict:
    """Runs the probe in a fresh interpreter and returns its figures."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, dtype, order, what],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


needs_linux = pytest.mark.skipif(
    not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc peak-RSS reset"
)


@needs_linux
@pytest.mark.parametrize("what", ["fit", "predict"])
def test_contiguous_input_in_model_dtype_is_not_copied(what):
    r = probe("float32", "C", what)
    assert r["x_mib"] == 128
    # Training buffers for a 1024-row batch are a few MiB; a copy of X would be 128.
    assert r["grew_mib"] < 32, r


@needs_linux
def test_the_probe_sees_a_copy_when_there_is_one():
    # Fortran order must be converted once: the peak grows by about the size of X. This
    # shows the measurement above can fail.
    r = probe("float32", "F", "fit")
    assert r["grew_mib"] > 100, r
