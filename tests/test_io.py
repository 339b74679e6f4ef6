"""Safe model files: mlpfast.save / mlpfast.load (safetensors), and their refusals."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import warnings

import numpy as np
import pytest

import mlpfast

ACTIVATIONS = ["identity", "sigmoid", "tanh", "relu", "leaky_relu", "elu", "maxout"]


def params(model):
    return [(lay.weight, lay.bias) for lay in model.layers if hasattr(lay, "weight")]


def read_parts(data: bytes):
    """(header dict, data section) of a safetensors file, parsed independently."""
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def write_parts(header: dict, body: bytes) -> bytes:
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


@pytest.fixture
def mlp_file(tmp_path):
    model = mlpfast.MLP([4, 6, 3], activation="tanh", loss="softmax", seed=0)
    path = tmp_path / "model.safetensors"
    mlpfast.save(model, path)
    return model, path


# --------------------------------------------------------------------------- MLP round trips
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_round_trip(tmp_path, rng, activation, dtype):
    model = mlpfast.MLP([5, 7, 4, 3], activation=activation, loss="svm", dtype=dtype, seed=1)
    X = rng.standard_normal((20, 5))
    model.fit(X, rng.integers(0, 3, 20), epochs=2, seed=0)  # weights and biases away from init
    path = tmp_path / "m.safetensors"
    mlpfast.save(model, path)
    back = mlpfast.load(str(path))
    assert isinstance(back, mlpfast.MLP)
    assert (back.layer_sizes, back.activation, back.loss_name, back.dtype) == (
        [5, 7, 4, 3],
        activation,
        "svm",
        dtype,
    )
    assert [type(lay) for lay in back.layers] == [type(lay) for lay in model.layers]
    for (w0, b0), (w1, b1) in zip(params(model), params(back)):
        assert w1.dtype == np.dtype(dtype)
        np.testing.assert_array_equal(w0, w1)
        np.testing.assert_array_equal(b0, b1)
    np.testing.assert_array_equal(back.forward(X), model.forward(X))


@pytest.mark.parametrize("loss", ["softmax", "svm", "mse", "bce", "half_squared_error"])
def test_every_loss_round_trips(tmp_path, loss):
    model = mlpfast.MLP([3, 4, 2], loss=loss, seed=0)
    mlpfast.save(model, tmp_path / "m")
    assert mlpfast.load(tmp_path / "m").loss_name == loss


def test_file_is_plain_safetensors(mlp_file):
    # An independent reading of the layout: 8-byte little-endian length, JSON header with
    # string metadata, F32 tensors at their offsets, raw little-endian bytes.
    model, path = mlp_file
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    assert (8 + n) % 8 == 0  # header padded to keep the tensors aligned
    header, body = read_parts(data)
    meta = header.pop("__metadata__")
    assert all(isinstance(v, str) for v in meta.values())
    assert meta["format"] == "mlpfast" and meta["kind"] == "MLP"
    assert json.loads(meta["layer_sizes"]) == [4, 6, 3]
    assert (meta["activation"], meta["loss"], meta["dtype"]) == ("tanh", "softmax", "float32")
    assert json.loads(meta["pieces"]) == [None, None]
    assert sorted(header) == [
        "layers.0.bias",
        "layers.0.weight",
        "layers.1.bias",
        "layers.1.weight",
    ]
    for i, (w, b) in enumerate(params(model)):
        for name, arr in (("weight", w), ("bias", b)):
            info = header[f"layers.{i}.{name}"]
            assert info["dtype"] == "F32" and info["shape"] == list(arr.shape)
            begin, end = info["data_offsets"]
            np.testing.assert_array_equal(
                np.frombuffer(body[begin:end], dtype="<f4").reshape(arr.shape), arr
            )
    assert max(info["data_offsets"][1] for info in header.values()) == len(body)


def test_maxout_pieces_in_metadata(tmp_path):
    model = mlpfast.MLP([3, 4, 5, 2], activation="maxout", dtype="float64", seed=0)
    mlpfast.save(model, tmp_path / "m")
    header, _ = read_parts((tmp_path / "m").read_bytes())
    assert json.loads(header["__metadata__"]["pieces"]) == [2, 2, None]
    assert header["layers.0.weight"] == {
        "dtype": "F64",
        "shape": [2, 3, 4],
        "data_offsets": header["layers.0.weight"]["data_offsets"],
    }


def test_save_replaces_and_bytes_api(tmp_path, mlp_file):
    model, path = mlp_file
    other = mlpfast.MLP([2, 2], seed=5)
    mlpfast.save(other, path)  # replaced
    assert mlpfast.load(path).layer_sizes == [2, 2]
    assert mlpfast.io.from_bytes(mlpfast.io.to_bytes(model)).layer_sizes == [4, 6, 3]
    assert not list(tmp_path.glob(".mlpfast-*"))  # no temporary file left behind


def test_save_refuses_other_objects(tmp_path):
    with pytest.raises(TypeError, match=r"expected an mlpfast\.MLP"):
        mlpfast.save(mlpfast.Linear(2, 2), tmp_path / "x")


# --------------------------------------------------------------------------- refusals
def refused(path, data: bytes, match: str):
    path.write_bytes(data)
    with pytest.raises(ValueError, match=match):
        mlpfast.load(path)


def test_truncated_files(tmp_path, mlp_file):
    _, path = mlp_file
    data = path.read_bytes()
    bad = tmp_path / "bad"
    refused(bad, b"", "truncated file: 0 bytes")
    refused(bad, data[:5], "truncated file: 5 bytes")
    refused(bad, data[:20], "truncated file: the header needs")
    # Cut inside the tensors: the last tensor's offsets now run past the end.
    refused(bad, data[:-3], "out of range")
    (n,) = struct.unpack("<Q", data[:8])
    refused(bad, data[: 8 + n], "out of range")


def test_corrupt_headers(tmp_path, mlp_file):
    _, path = mlp_file
    data = path.read_bytes()
    bad = tmp_path / "bad"
    garbled = data[:8] + b"{not json" + data[17:]
    refused(bad, garbled, "corrupt header")
    refused(bad, write_parts([1, 2], b""), "not a JSON object")
    refused(bad, struct.pack("<Q", 2**40) + b"x" * 16, "implausible")
    refused(bad, data[:8] + b"\xff\xfe" + data[10:], "corrupt header")


def edited(data: bytes, edit) -> bytes:
    header, body = read_parts(data)
    body = edit(header, body) or body
    return write_parts(header, body)


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda h, b: h["layers.0.weight"].update(dtype="F16"), "unsupported dtype 'F16'"),
        (lambda h, b: h["layers.0.weight"].update(dtype="I32"), "unsupported dtype 'I32'"),
        (lambda h, b: h["layers.0.weight"].update(shape=[4, 5]), "needs 80 bytes"),
        (lambda h, b: h["layers.0.weight"].update(shape=[-4, -6]), "bad shape"),
        # A dtype JSON cannot hash, a shape numpy cannot make or whose product is huge.
        (lambda h, b: h["layers.0.weight"].update(dtype=["F32"]), r"unsupported dtype \['F32'\]"),
        (lambda h, b: h["layers.0.weight"].update(dtype={"F32": 1}), "unsupported dtype"),
        (lambda h, b: h["layers.0.weight"].update(dtype=32), "unsupported dtype 32"),
        (lambda h, b: h["layers.0.weight"].update(shape=[0, 10**30]), "bad shape"),
        (lambda h, b: h["layers.0.weight"].update(shape=[1, 1, 4, 6]), "bad shape"),
        (lambda h, b: h["layers.0.weight"].update(shape=[2**62] * 3), "needs more than that"),
        (lambda h, b: h["layers.0.weight"].update(shape=[10**4000, 1]), "needs more than that"),
        (lambda h, b: h["layers.0.weight"].update(data_offsets=[0, 10**9]), "out of range"),
        (lambda h, b: h["layers.0.weight"].update(data_offsets=[5]), "out of range"),
        (lambda h, b: h["layers.1.bias"].update(data_offsets=[0, 12]), "overlaps or leaves"),
        (lambda h, b: h.update({"layers.0.weight": "x"}), "not described by an object"),
        (lambda h, b: b + b"\0" * 8, "bytes after the last tensor"),
        (lambda h, b: h["__metadata__"].update(layer_sizes="[4, 7, 3]"), "has shape"),
        (lambda h, b: h["__metadata__"].update(layer_sizes="[4, 6"), "not valid JSON"),
        (lambda h, b: h["__metadata__"].update(layer_sizes="[4]"), "bad layer_sizes"),
        (lambda h, b: h["__metadata__"].update(activation="swish"), "unknown activation"),
        (lambda h, b: h["__metadata__"].update(loss="focal"), "unknown loss"),
        (lambda h, b: h["__metadata__"].update(dtype="float16"), "unknown dtype"),
        (lambda h, b: h["__metadata__"].update(dtype="float64"), "is float32, the model is"),
        (lambda h, b: h["__metadata__"].update(pieces="[3, null]"), "pieces"),
        (lambda h, b: h["__metadata__"].update(kind="pickle"), "unknown kind"),
        (lambda h, b: h["__metadata__"].update(format_version="9"), "format version '9'"),
        (lambda h, b: h["__metadata__"].update(extra=5), "metadata values must be strings"),
        (lambda h, b: b[: h.pop("layers.1.bias")["data_offsets"][0]], "tensors do not match"),
    ],
)
def test_corrupt_fields(tmp_path, mlp_file, edit, match):
    _, path = mlp_file
    refused(tmp_path / "bad", edited(path.read_bytes(), edit), match)


def test_foreign_files(tmp_path):
    bad = tmp_path / "foreign.safetensors"
    # A valid safetensors file that is not ours: no metadata at all, or other metadata.
    body = np.arange(6, dtype="<f4").tobytes()
    tensor = {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    refused(bad, write_parts({"w": tensor}, body), "not an mlpfast model file")
    refused(bad, write_parts({"__metadata__": {"format": "pt"}, "w": tensor}, body), "not an")
    refused(bad, b"PK\x03\x04" + b"\0" * 60, "not a safetensors file|truncated|corrupt")
    refused(bad, b"\x80\x04\x95" + b"\0" * 40, "not a safetensors file|truncated|corrupt")


# --------------------------------------------------------------------------- estimators
@pytest.fixture(autouse=True)
def _sklearn_for_estimators(request):
    if "estimator" in request.node.name or "classifier" in request.node.name:
        pytest.importorskip("sklearn")
    if "feature_names" in request.node.name:
        pytest.importorskip("sklearn")


def fitted(cls, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return cls(**kw).fit(X, y)


@pytest.mark.parametrize(
    "labels",
    [
        np.array(["ant", "bee", "cat"]),
        np.array([10, 20, 30]),
        np.array([2.0, -1.0, 0.0]),
        np.array(["x", "y", "z"], dtype=object),
        np.array([True, False, True]),
    ],
    ids=["str", "int", "float", "object", "bool"],
)
def test_classifier_round_trip(tmp_path, rng, labels):
    from mlpfast.sklearn import MLPClassifier

    X = rng.standard_normal((60, 4))
    y = labels[rng.integers(0, 3, 60)]
    clf = fitted(MLPClassifier, X, y, hidden_layer_sizes=(5, 4), max_iter=5, random_state=0)
    path = tmp_path / "clf.safetensors"
    clf.save(path)
    back = mlpfast.load(path)
    assert type(back) is MLPClassifier
    assert back.get_params() == clf.get_params()
    assert back.classes_.dtype == clf.classes_.dtype
    np.testing.assert_array_equal(back.classes_, clf.classes_)
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    for name in ("n_iter_", "t_", "n_layers_", "n_outputs_", "out_activation_", "loss_"):
        assert getattr(back, name) == getattr(clf, name)
    assert back.loss_curve_ == clf.loss_curve_
    assert back.best_loss_ == clf.best_loss_
    for a, b in zip(back.coefs_ + back.intercepts_, clf.coefs_ + clf.intercepts_):
        np.testing.assert_array_equal(a, b)
    # The loaded estimator goes on training.
    back.partial_fit(X, y)
    assert len(back.loss_curve_) == len(clf.loss_curve_) + 1


def test_estimator_special_values_round_trip(tmp_path, rng):
    from mlpfast.sklearn import MLPClassifier, MLPRegressor

    X = rng.standard_normal((80, 3))
    y = rng.integers(0, 2, 80)
    clf = fitted(
        MLPClassifier,
        X,
        y,
        hidden_layer_sizes=[3],
        activation="maxout",
        early_stopping=True,
        n_iter_no_change=np.inf,
        max_iter=4,
        dtype=np.float64,
        loss="log_loss",
        random_state=0,
    )
    clf.save(tmp_path / "c")
    back = mlpfast.load(tmp_path / "c")
    assert back.n_iter_no_change == np.inf
    assert back.hidden_layer_sizes == [3]
    assert back.dtype == "float64"  # a dtype object is saved by name
    assert back.best_loss_ is None
    assert back.validation_scores_ == clf.validation_scores_
    assert back.coefs_[0].shape == (2, 3, 3)
    Y = np.stack([y, -y], axis=1).astype(float)
    reg = fitted(MLPRegressor, X, Y, hidden_layer_sizes=(4,), max_iter=3, random_state=0)
    reg.save(tmp_path / "r")
    rback = mlpfast.load(tmp_path / "r")
    assert type(rback) is MLPRegressor
    np.testing.assert_array_equal(rback.predict(X), reg.predict(X))
    assert rback.score(X, Y) == reg.score(X, Y)


def test_feature_names_round_trip(tmp_path, rng):
    pd = pytest.importorskip("pandas")
    from mlpfast.sklearn import MLPRegressor

    df = pd.DataFrame(rng.standard_normal((30, 3)), columns=["age", "bmi", "bp"])
    reg = fitted(MLPRegressor, df, rng.standard_normal(30), max_iter=2, random_state=0)
    mlpfast.save(reg, tmp_path / "r")
    back = mlpfast.load(tmp_path / "r")
    np.testing.assert_array_equal(back.feature_names_in_, ["age", "bmi", "bp"])
    assert back.feature_names_in_.dtype == object
    np.testing.assert_array_equal(back.predict(df), reg.predict(df))


def test_unfitted_estimator_and_generator_random_state(tmp_path, rng):
    from sklearn.exceptions import NotFittedError

    from mlpfast.sklearn import MLPClassifier

    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "x")
    X, y = rng.standard_normal((30, 2)), rng.integers(0, 2, 30)
    clf = fitted(MLPClassifier, X, y, max_iter=2, random_state=np.random.RandomState(0))
    with pytest.warns(UserWarning, match="saved as None"):
        clf.save(tmp_path / "x")
    assert mlpfast.load(tmp_path / "x").random_state is None


def estimator_file(tmp_path, rng):
    from mlpfast.sklearn import MLPClassifier

    X, y = rng.standard_normal((30, 2)), np.array(["a", "b"])[rng.integers(0, 2, 30)]
    fitted(MLPClassifier, X, y, max_iter=2, random_state=0).save(tmp_path / "e")
    return (tmp_path / "e").read_bytes()


def set_meta(key, value):
    return lambda h, b: h["__metadata__"].update({key: value})


def set_json(key, edit):
    def run(h, b):
        obj = json.loads(h["__metadata__"][key])
        edit(obj)
        h["__metadata__"][key] = json.dumps(obj)

    return run


def array(dtype, values, shape=None):
    """An array as mlpfast writes it into a file's metadata."""
    shape = [len(values)] if shape is None else shape
    return {"__ndarray__": {"dtype": dtype, "shape": shape, "values": values}}


def set_classes(dtype, values, shape=None):
    return set_json("fitted", lambda f: f.update(classes_=array(dtype, values, shape)))


def nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # Only mlpfast's own two classes are ever built: no name is imported from a file.
        (set_meta("estimator", "os.system"), "unknown estimator 'os.system'"),
        (set_meta("estimator", "BaseEstimator"), "unknown estimator"),
        (set_meta("params", "{"), "not valid JSON"),
        (set_meta("params", "[1]"), "must be objects"),
        (set_json("params", lambda p: p.update(evil=1)), r"unknown parameters \['evil'\]"),
        (set_json("fitted", lambda f: f.update(__class__="x")), "unknown attributes"),
        (set_json("fitted", lambda f: f.update(loss_={"__pickle__": "x"})), "unexpected value"),
        (
            set_json("fitted", lambda f: f["classes_"]["__ndarray__"].update(dtype="V8")),
            "unexpected array dtype",
        ),
        (
            set_json("fitted", lambda f: f["classes_"]["__ndarray__"].update(shape=[5])),
            "do not match the shape",
        ),
        (set_json("fitted", lambda f: f.update(n_outputs_=7)), "do not match the network"),
        (set_json("fitted", lambda f: f.update(_kind="multiclass")), "do not match"),
        (set_json("params", lambda p: p.update(activation="tanh")), "warm_start"),
        # Values numpy would raise OverflowError on, or silently convert.
        (set_classes("<i8", [2**70, 1]), "array value 1180591620717411303424 does not fit .*<i8"),
        (set_classes("|u1", [-1, 1]), "array value -1 does not fit the array's dtype |u1"),
        (set_classes("<f8", [10**400, 1.0]), "does not fit the array's dtype <f8"),
        (set_classes("<f4", [1e300, 1.0]), "array value 1e[+]300 does not fit"),
        (set_classes("<i8", [1.5, 1]), "array value 1.5 does not fit"),
        (set_classes("<i8", [True, 1]), "array value True does not fit"),
        (set_classes("|b1", [1, 0]), "array value 1 does not fit"),
        (set_classes("<f8", ["1.5", 2.0]), "array value '1.5' does not fit"),
        (set_classes("<U1", ["abc", "b"]), "array value 'abc' does not fit the array's dtype <U1"),
        (set_classes("<U1", [["a"], "b"]), "array values must be str, int, float or bool"),
        (set_classes("O", [{"__ndarray__": {}}, "b"]), "array values must be str, int, float"),
        (set_classes("<f8\n", [1.0, 2.0]), "unexpected array dtype"),
        (set_classes("<U0", ["", ""]), "unexpected array dtype"),
        (set_classes("<U1", "ab"), "array values must be a list"),
        (set_classes("<f8", [], shape=[0, 10**30]), "do not match the empty shape"),
        (set_classes("<f8", [1.0], shape=[1] * 40), "unexpected array shape"),
        (
            set_json("fitted", lambda f: f.update(loss_={"__tuple__": 5})),
            "field 'loss_': unexpected",
        ),
        (
            set_json("params", lambda p: p.update(hidden_layer_sizes=nested(200))),
            "field 'hidden_layer_sizes': values nested more than 32 deep",
        ),
        # Types only a file can give, where the estimator expects an int or a str.
        (set_json("fitted", lambda f: f.update(n_features_in_=array("<i8", [2]))), "do not match"),
        (set_json("fitted", lambda f: f.update(n_outputs_=1.0)), "do not match the network"),
        (set_json("fitted", lambda f: f.update(_kind=array("<U6", ["binary"]))), "target kind"),
        # Parameters numpy's dtype parser or float() would raise SyntaxError / OverflowError on.
        (set_json("params", lambda p: p.update(dtype="f4,(")), "'dtype' parameter .* Got 'f4,\\('"),
        (set_json("params", lambda p: p.update(dtype=[["a", "f4,("]])), "'dtype' parameter"),
        (set_json("params", lambda p: p.update(dtype="a")), "'dtype' parameter"),
        (
            set_json("params", lambda p: p.update(alpha=10**400)),
            "'alpha' parameter must be a float",
        ),
    ],
)
def test_corrupt_estimator_metadata(tmp_path, rng, edit, match):
    data = estimator_file(tmp_path, rng)
    refused(tmp_path / "bad", edited(data, edit), match)


def test_wide_label_dtype_round_trips(tmp_path, rng):
    # Labels held in a dtype wider than they are (<U40 for one-letter labels) come back
    # with it: the bound on what a file's arrays may take leaves room for that.
    from mlpfast.sklearn import MLPClassifier

    X, y = rng.standard_normal((30, 2)), np.array(["a", "b", "c"])[rng.integers(0, 3, 30)]
    clf = fitted(MLPClassifier, X, y, hidden_layer_sizes=(3,), max_iter=2, random_state=0)
    clf.classes_ = clf.classes_.astype("<U40")
    clf.save(tmp_path / "w")
    back = mlpfast.load(tmp_path / "w")
    assert back.classes_.dtype == np.dtype("<U40")
    np.testing.assert_array_equal(back.classes_, clf.classes_)


# --------------------------------------------------------------------------- hostile files
def load_in_child(path, headroom: int = 512 << 20) -> subprocess.CompletedProcess:
    """Loads ``path`` in a child whose address space may grow by ``headroom`` bytes past
    what its imports took: a loader that allocates what a file declares fails there with
    MemoryError instead of taking the machine's memory."""
    code = textwrap.dedent(
        f"""
        import resource, sys
        import mlpfast, mlpfast.sklearn
        status = open("/proc/self/status").read().split()
        size = int(status[status.index("VmSize:") + 1]) * 1024
        resource.setrlimit(resource.RLIMIT_AS, (size + {headroom}, size + {headroom}))
        try:
            mlpfast.load(sys.argv[1])
            print("loaded")
        except ValueError as exc:
            print("ValueError:", exc)
        """
    )
    return subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=300
    )


def test_declared_string_width_is_refused_before_allocating(tmp_path, rng):
    # A 9 KB file whose classes_ declares 1,000 labels of <U999999: 4 GB as numpy would
    # hold them. The loader refuses it from the declaration, allocating nothing.
    labels = [f"c{i}" for i in range(1000)]
    data = edited(estimator_file(tmp_path, rng), set_classes("<U999999", labels))
    assert len(data) < 16_000
    path = tmp_path / "wide.safetensors"
    path.write_bytes(data)
    out = load_in_child(path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("ValueError:"), out.stdout
    assert "array of 1000 x <U999999 needs 3999996000 bytes" in out.stdout
    assert "more than the file's values may take" in out.stdout


def test_arrays_share_one_allocation_bound(tmp_path, rng):
    # Each array within the bound, all of them together far beyond it.
    wide = [array("<U100000", ["x"]) for _ in range(40)]
    data = edited(estimator_file(tmp_path, rng), set_json("fitted", lambda f: f.update(x_=wide)))
    refused(tmp_path / "bad", data, "more than the file's values may take")


def peak_bytes(fn) -> int:
    """The peak of the memory Python and numpy allocate while ``fn`` runs."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_overlapping_tensors_are_refused_before_copying(tmp_path):
    # 300 tensors declared over the same 100 KB: copied one by one, 30 MB.
    model = mlpfast.MLP([100, 250], seed=0)
    header, body = read_parts(mlpfast.io.to_bytes(model))
    for i in range(300):
        header[f"copy{i}"] = {"dtype": "F32", "shape": [100, 250], "data_offsets": [0, 100_000]}
    data = write_parts(header, body)

    def load():
        with pytest.raises(ValueError, match="overlaps or leaves a gap"):
            mlpfast.io.from_bytes(data)

    assert peak_bytes(load) < 4 * len(data) + (1 << 20)


def test_messages_show_hostile_values_shortened(tmp_path, mlp_file):
    _, path = mlp_file
    data = path.read_bytes()
    for edit in (
        set_meta("activation", "x" * 1_000_000),
        set_meta("layer_sizes", json.dumps(nested(900))),
        set_meta("pieces", json.dumps(list(range(100_000)))),
        lambda h, b: h.update({"y" * 100_000: 1}),
    ):
        with pytest.raises(ValueError) as info:
            mlpfast.io.from_bytes(edited(data, edit))
        assert len(str(info.value)) < 400
