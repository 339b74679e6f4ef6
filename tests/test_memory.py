"""Memory: no copy of X, and a MemoryError (never an abort) when an allocation fails.

fit() and predict() read a C-contiguous X in the model's dtype in place. Measured by the
process's peak resident memory (Linux's VmHWM, reset through /proc/self/clear_refs) in a
fresh subprocess: a copy of the 128 MiB X would raise the peak by that much; reading it in
place raises it by the training buffers only.

Every buffer whose size comes from the user (weights, optimizer state, batch and predict
buffers) is allocated fallibly: past the memory limit the call raises MemoryError naming
the buffer and leaves the model as it was. Each case runs in a subprocess whose address
space is capped (RLIMIT_AS), since an allocation that aborted would kill the test runner.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
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


# ------------------------------------------------------------------ allocation failure
CAPPED = r"""
import resource, sys
cap = 3 << 30
resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
import pickle
import numpy as np
import mlpfast

def fingerprint(model):
    layers = getattr(model, "param_layers", [model])
    return [(float(l.weight.sum(dtype=np.float64)), l.weight.ravel()[:8].tolist(),
             l.bias.tolist()[:8]) for l in layers]

try:
{body}
except MemoryError as e:
    print("MemoryError:", e)
    sys.exit(0)
print("no MemoryError")
sys.exit(1)
"""

needs_rlimit = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="needs RLIMIT_AS to cap the address space"
)

# Each body must raise MemoryError; where a model exists before the call, the body checks
# in a `finally` that the failed call left its weights, biases and history as they were.
UNCHANGED = """
    model = {make}
    before = fingerprint(model), dict(model.history) if hasattr(model, "history") else None
    try:
        {call}
    finally:
        after = fingerprint(model), dict(model.history) if hasattr(model, "history") else None
        assert after == before, "the failed call changed the model"
"""

ALLOCATIONS = {
    # Weights, each layer kind and each way a model is built.
    "mlp_weights": "    mlpfast.MLP([10**5, 10**5])",
    "linear_weights": "    mlpfast.Linear(10**6, 10**6)",
    "maxout_weights": "    mlpfast.Maxout(10**5, 10**5)",
    "mlp_maxout_weights": "    mlpfast.MLP([10**4, 10**5, 2], activation='maxout')",
    "estimator_weights": """
    from mlpfast.sklearn import MLPClassifier
    X = np.random.default_rng(0).standard_normal((20, 4))
    MLPClassifier(hidden_layer_sizes=(10**6, 10**6)).fit(X, np.arange(20) % 2)
""",
    # A pickle naming only mlpfast's own rebuild function, with huge sizes.
    "pickle_rebuild": """
    from mlpfast._pickle import _rebuild_linear
    class Payload:
        def __reduce__(self):
            return _rebuild_linear, (10**6, 10**6, "float32", None, None)
    pickle.loads(pickle.dumps(Payload()))
""",
    # Training buffers: one batch of 10**6 rows through a 20000-wide layer is 80 GB.
    "fit_batch_buffers": UNCHANGED.format(
        make="mlpfast.MLP([4, 20000, 3], seed=0)",
        call="model.fit(np.zeros((10**6, 4), np.float32), np.zeros(10**6, int), "
        "batch_size=10**6, epochs=1)",
    ),
    # The gradients and Adam's moments of a model whose 0.8 GB of weights did fit.
    "fit_optimizer_state": UNCHANGED.format(
        make="mlpfast.MLP([4000, 50000], seed=0)",
        call="model.fit(np.zeros((4, 4000), np.float32), np.zeros(4, int), "
        "optimizer='adam', epochs=1)",
    ),
    # Predict and forward buffers.
    "predict_outputs": UNCHANGED.format(
        make="mlpfast.MLP([2, 10**5], seed=0)", call="model.predict(np.zeros((10**5, 2)))"
    ),
    "layer_forward_outputs": UNCHANGED.format(
        make="mlpfast.Linear(2, 10**5, seed=0)", call="model.forward(np.zeros((10**5, 2)))"
    ),
}


@needs_rlimit
@pytest.mark.parametrize("body", ALLOCATIONS.values(), ids=ALLOCATIONS.keys())
def test_allocation_failure_is_a_memory_error(body):
    script = CAPPED.format(body=textwrap.indent(textwrap.dedent(body).strip(), "    "))
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert out.returncode == 0, (out.returncode, out.stdout, out.stderr[-2000:])
    # The message names the buffer and its size in bytes.
    assert "cannot allocate" in out.stdout and "bytes" in out.stdout, out.stdout
