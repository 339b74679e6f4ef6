"""One-row latency of the mnist model (784-256-128-10, relu, float32): the ``--latency`` section.

Contenders, each called on the same single row:

* ``native predict``: ``mlpfast.MLP.predict`` (target ≤ 6 µs);
* ``estimator predict`` / ``estimator predict_proba``: ``mlpfast.sklearn.MLPClassifier``
  fitted briefly on mnist-shaped data (target ≤ 20 µs);
* ``sklearn predict`` / ``sklearn predict_proba``: scikit-learn's ``MLPClassifier`` of the same
  shape, for reference, when installed;
* ``onnxruntime``: the native model exported by ``mlpfast.to_onnx`` (float32, input
  ``X`` [N, 784]), checked to give its scores and labels, then ``InferenceSession.run`` of
  its ``label`` output (what ``predict`` returns) with default session options and with
  ``intra_op_num_threads=1``; when onnx and onnxruntime import.

The contenders take turns: every round calls each one ``CALLS`` times after a pause (so that
other threads are idle); the figure is the median over all the calls, after a warm-up.
"""

from __future__ import annotations

import statistics
import time
import warnings
from typing import Callable

import numpy as np
import workloads as wl
from timing import SETTLE

CALLS = 1000  # calls per contender and round
WARMUP = 200


def call_seconds(fn: Callable[[], object], calls: int) -> list[float]:
    """Seconds of each of ``calls`` calls of ``fn``, started after a pause."""
    time.sleep(SETTLE)
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def interleaved_medians(fns: dict[str, Callable[[], object]], rounds: int) -> dict[str, float]:
    """Median µs per call of every contender, the contenders taking turns round by round."""
    for fn in fns.values():
        for _ in range(WARMUP):
            fn()
    calls: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            calls[name] += call_seconds(fn, CALLS)
    return {name: statistics.median(ts) * 1e6 for name, ts in calls.items()}


def estimator_kwargs(w: wl.Workload) -> dict:
    """The workload's network as scikit-learn's MLPClassifier arguments, one epoch of SGD."""
    return dict(
        hidden_layer_sizes=w.sizes[1:-1],
        activation=w.activation,
        solver="sgd",
        momentum=0.0,
        learning_rate_init=0.01,
        batch_size=w.batch,
        max_iter=1,
        random_state=0,
    )


def fitted(cls, w: wl.Workload, X, y):
    """An estimator of class ``cls`` fitted for one epoch on ``X``, ``y``."""
    from sklearn.exceptions import ConvergenceWarning

    est = cls(**estimator_kwargs(w))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


def onnx_sessions(model: bytes) -> dict:
    """InferenceSessions of ``model``: default options, and one intra-op thread."""
    import onnxruntime as ort

    one = ort.SessionOptions()
    one.intra_op_num_threads = 1
    return {
        name: ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
        for name, opts in (("default", ort.SessionOptions()), ("1 thread", one))
    }


def check_onnx(session, model, X: np.ndarray) -> dict:
    """onnxruntime's scores and labels against the native model's on ``X``: they must agree."""
    ours = model.decision_function(X)
    theirs, labels = session.run(["scores", "label"], {"X": X})
    # float32 sums of 784 products, added in another order: rounding differs, no more.
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)
    agree = float(np.mean(labels == model.predict(X)))
    assert agree > 0.99, f"onnxruntime and mlpfast predict the same class on only {agree:.3f}"
    return {
        "rows": X.shape[0],
        "max_abs_diff": float(np.abs(theirs - ours).max()),
        "argmax_agree": agree,
    }


def contenders(w: wl.Workload, X, y, use: dict[str, bool]) -> tuple[dict, dict]:
    """name -> one-row call, and what was checked on the way (the ONNX model's agreement)."""
    from mlpfast import sklearn as mf

    params = wl.init_params(w)
    model = wl.mlpfast_model(w, params)
    one = np.ascontiguousarray(X[:1])
    est = fitted(mf.MLPClassifier, w, X[:2000], y[:2000])
    fns = {
        "native predict": lambda: model.predict(one),
        "estimator predict": lambda: est.predict(one),
        "estimator predict_proba": lambda: est.predict_proba(one),
    }
    if use["sklearn"]:
        from sklearn.neural_network import MLPClassifier

        sk = fitted(MLPClassifier, w, X[:2000], y[:2000])
        fns["sklearn predict"] = lambda: sk.predict(one)
        fns["sklearn predict_proba"] = lambda: sk.predict_proba(one)
    checks = {}
    if use["onnx"]:
        import mlpfast

        exported = mlpfast.to_onnx(model).SerializeToString()
        for name, session in onnx_sessions(exported).items():
            checks[f"onnxruntime ({name})"] = check_onnx(session, model, X[:256])
            fns[f"onnxruntime ({name})"] = lambda s=session: s.run(["label"], {"X": one})
    return fns, checks


def run(rounds: int, use: dict[str, bool]) -> dict:
    """The latency section of results.json."""
    w = wl.BY_NAME["mnist"]
    X, y = w.data()
    fns, checks = contenders(w, X, y, use)
    return {
        "workload": w.name,
        "rounds": rounds,
        "calls_per_round": CALLS,
        "us": interleaved_medians(fns, rounds),
        "onnx_check": checks,
    }
