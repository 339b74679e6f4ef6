"""One-row latency of the mnist model (784-256-128-10, relu, float32): the ``--latency`` section.

Contenders, each called on the same single row:

* ``native predict``: ``mlpfast.MLP.predict`` (target ≤ 6 µs);
* ``estimator predict`` / ``estimator predict_proba``: ``mlpfast.sklearn.MLPClassifier``
  fitted briefly on mnist-shaped data (target ≤ 20 µs);
* ``sklearn predict`` / ``sklearn predict_proba``: scikit-learn's ``MLPClassifier`` of the same
  shape, for reference, when installed;
* ``onnxruntime``: the same network built here as an ONNX graph (MatMul, Add, the activation;
  float32, input [N, 784]) from the native model's weights, checked to give its scores, then
  ``InferenceSession.run`` with default session options and with ``intra_op_num_threads=1``;
  when onnx and onnxruntime import.

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

# ONNX operators (and attributes) of mlpfast's elementwise activations.
ONNX_ACTIVATIONS = {
    "identity": None,
    "relu": ("Relu", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
    "elu": ("Elu", {"alpha": 1.0}),
}


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


def onnx_model(params, activation: str) -> bytes:
    """The network of ``params`` as a serialized float32 ONNX model: input "X" [N, in],
    output "scores" [N, out]."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, weights, x = [], [], "X"
    last = len(params) - 1
    for i, (W, b) in enumerate(params):
        weights += [numpy_helper.from_array(W, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        z = "scores" if i == last else f"z{i}"
        nodes += [
            helper.make_node("MatMul", [x, f"W{i}"], [f"m{i}"]),
            helper.make_node("Add", [f"m{i}", f"b{i}"], [z]),
        ]
        x = z
        if i < last and ONNX_ACTIVATIONS[activation] is not None:
            op, attrs = ONNX_ACTIVATIONS[activation]
            nodes.append(helper.make_node(op, [z], [f"a{i}"], **attrs))
            x = f"a{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", params[0][0].shape[0]])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", params[-1][0].shape[1]])],
        weights,
    )
    # Opset 17 and IR version 8: what every onnxruntime of the last years reads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model.SerializeToString()


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
    """onnxruntime's scores against the native model's on ``X``: they must agree."""
    ours = model.decision_function(X)
    theirs = session.run(None, {"X": X})[0]
    # float32 sums of 784 products, added in another order: rounding differs, no more.
    np.testing.assert_allclose(theirs, ours, rtol=1e-4, atol=1e-4)
    agree = float(np.mean(theirs.argmax(axis=1) == model.predict(X)))
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
        for name, session in onnx_sessions(onnx_model(params, w.activation)).items():
            checks[f"onnxruntime ({name})"] = check_onnx(session, model, X[:256])
            fns[f"onnxruntime ({name})"] = lambda s=session: s.run(None, {"X": one})
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
