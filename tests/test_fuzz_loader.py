"""Fuzzing the model-file loader: mutated files load or raise ValueError, within memory.

Each example starts from a file mlpfast.save wrote (an MLP of each dtype, a Maxout MLP, a
fitted MLPClassifier and MLPRegressor with their fields) and damages it: bytes flipped,
cut, inserted or appended, or the JSON header edited (a dtype, shape, offset or metadata
value replaced by a hostile one, keys removed or added, lists repeated into huge counts,
structures nested deep). Loading must return a model or raise ValueError, nothing else,
and the memory Python and numpy allocate meanwhile (tracemalloc) must stay within a
constant times the file's size plus a constant. The examples are derandomized, so a run
is reproducible; fuzz/fuzz_loader.py runs the same check coverage-guided for longer.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import struct
import tracemalloc
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mlpfast

pytest.importorskip("sklearn")

# JSON inflates: "[{},{},...]" is 3 bytes an element in the file and about 70 as Python
# objects, and an estimator's arrays may take 8 x the file's size + 1 MiB per field.
PEAK_FACTOR = 64
PEAK_SLACK = 4 << 20

SETTINGS = settings(
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# --------------------------------------------------------------------------- seed files
_SEEDS = Path(__file__).parents[1] / "fuzz" / "seeds.py"


@functools.cache
def seeds() -> tuple[bytes, ...]:
    """Files of every kind mlpfast writes (fuzz/seeds.py, shared with the atheris fuzzer)."""
    spec = importlib.util.spec_from_file_location("fuzz_seeds", _SEEDS)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return tuple(module.seed_files())


def split(data: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n]), data[8 + n :]


# --------------------------------------------------------------------------- the check
@pytest.fixture(scope="module")
def traced():
    tracemalloc.start()
    yield
    tracemalloc.stop()


def check_load(data: bytes) -> None:
    """Loads ``data``: a model or ValueError, and a bounded peak of allocations."""
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        model = mlpfast.io.from_bytes(data)
    except ValueError:
        model = None
    peak = tracemalloc.get_traced_memory()[1] - before
    assert peak <= PEAK_FACTOR * len(data) + PEAK_SLACK, (peak, len(data))
    if model is not None:
        assert isinstance(model, mlpfast.MLP) or hasattr(model, "_mlp"), type(model)


# --------------------------------------------------------------------------- byte mutations
byte_edits = st.one_of(
    st.tuples(st.just("flip"), st.integers(0, 1 << 20), st.integers(1, 255)),
    st.tuples(st.just("cut"), st.integers(0, 1 << 20), st.just(0)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("insert"), st.integers(0, 1 << 20), st.integers(1, 10**5).map(b"[".__mul__)),
    st.tuples(st.just("delete"), st.integers(0, 1 << 20), st.integers(1, 64)),
    st.tuples(st.just("append"), st.just(0), st.binary(min_size=1, max_size=64)),
    st.tuples(st.just("length"), st.just(0), st.integers(0, 2**64 - 1)),
)


def apply_bytes(data: bytes, edit) -> bytes:
    op, at, arg = edit
    at = at % (len(data) + 1)
    if op == "flip" and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ arg]) + data[at + 1 :]
    if op == "cut":
        return data[:at]
    if op == "insert":
        return data[:at] + arg + data[at:]
    if op == "delete":
        return data[:at] + data[at + arg :]
    if op == "append":
        return data + arg
    if op == "length":
        return struct.pack("<Q", arg) + data[8:]
    return data


@settings(SETTINGS, max_examples=1500)
@given(seed=st.integers(0, 5), edits=st.lists(byte_edits, min_size=1, max_size=4))
def test_byte_mutations(traced, seed, edits):
    data = seeds()[seed]
    for edit in edits:
        data = apply_bytes(data, edit)
    check_load(data)


# --------------------------------------------------------------------------- header mutations
class Embedded:
    """A metadata string holding JSON, parsed so that the mutations reach inside it."""

    def __init__(self, value):
        self.value = value


def expand(header: dict) -> dict:
    tree = copy.deepcopy(header)
    meta = tree.get("__metadata__", {})
    for key, text in meta.items():
        try:
            meta[key] = Embedded(json.loads(text))
        except ValueError:
            pass  # a plain string
    return tree


def to_json(node):
    if isinstance(node, Embedded):
        return json.dumps(to_json(node.value))
    if isinstance(node, dict):
        return {k: to_json(v) for k, v in node.items()}
    if isinstance(node, list):
        return [to_json(v) for v in node]
    return node


def paths(node, at=()):
    """Every place in the tree a value sits, the root included."""
    yield at
    if isinstance(node, Embedded):
        yield from paths(node.value, (*at, Embedded))
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, (*at, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, (*at, i))


def get(node, path):
    for step in path:
        node = node.value if step is Embedded else node[step]
    return node


def put(tree, path, value):
    """The tree with the value at ``path`` replaced (the root when ``path`` is empty)."""
    if not path:
        return value
    parent = get(tree, path[:-1])
    if path[-1] is Embedded:
        parent.value = value
    else:
        parent[path[-1]] = value
    return tree


huge_ints = (
    st.sampled_from(
        [-1, 0, 1, 2**31, 2**32 + 1, 2**53 + 1, 2**63 - 1, 2**63, 2**64, 2**70, -(2**63) - 1]
    )
    | st.integers(min_value=10**20, max_value=10**300).map(lambda v: v * 7)
    | st.integers()
)
hostile_strings = st.sampled_from(
    [
        "F32",
        "F64",
        "F16",
        "I64",
        "float32",
        "float64",
        "f4,(",
        "(" * 500 + "f4",
        "<U999999",
        "<U0",
        "<f8\n",
        "V8",
        "|u1",
        "<i8",
        "|b1",
        "O",
        "MLP",
        "estimator",
        "MLPClassifier",
        "MLPRegressor",
        "maxout",
        "softmax",
        "multilabel",
        "__ndarray__",
        "__tuple__",
        "__float__",
        "nan",
        "\ud800",
        "x" * 5000,
    ]
) | st.text(max_size=20)
scalars = (
    st.none()
    | st.booleans()
    | huge_ints
    | st.floats(allow_nan=True, allow_infinity=True)
    | hostile_strings
)


def nested(depth: int, leaf):
    for _ in range(depth):
        leaf = [leaf]
    return leaf


json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(hostile_strings, inner, max_size=3),
    max_leaves=12,
)
arrays = st.builds(
    lambda dtype, shape, values: {
        "__ndarray__": {"dtype": dtype, "shape": shape, "values": values}
    },
    hostile_strings | json_values,
    st.lists(huge_ints | st.integers(0, 5), max_size=4) | json_values,
    st.lists(scalars, max_size=6) | json_values,
)
hostile = st.one_of(
    scalars,
    json_values,
    arrays,
    st.builds(lambda v: {"__tuple__": v}, json_values),
    st.builds(lambda v: {"__float__": v}, hostile_strings),
    st.builds(nested, st.integers(30, 400), scalars),  # deeper: fuzz_loader.py
    st.lists(huge_ints, min_size=1, max_size=4),  # shapes, offsets, layer sizes
)

header_edits = st.one_of(
    st.tuples(st.just("replace"), st.integers(0, 10**6), hostile),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.none()),
    st.tuples(st.just("add"), st.integers(0, 10**6), st.tuples(hostile_strings, hostile)),
    st.tuples(st.just("repeat"), st.integers(0, 10**6), st.integers(2, 3000)),
    st.tuples(st.just("nudge"), st.integers(0, 10**6), st.integers(-3, 3)),
)


def apply_header(tree, edit):
    op, pick, arg = edit
    where = list(paths(tree))
    path = where[pick % len(where)]
    node = get(tree, path)
    if op == "replace":
        return put(tree, path, copy.deepcopy(arg))
    if op == "delete" and path and path[-1] is not Embedded:
        del get(tree, path[:-1])[path[-1]]
    elif op == "add" and isinstance(node, dict):
        node[arg[0]] = copy.deepcopy(arg[1])
    elif op == "repeat" and isinstance(node, list):
        node[:] = node * arg if node else [0] * arg
    elif op == "nudge" and isinstance(node, int) and not isinstance(node, bool):
        return put(tree, path, node + arg)
    return tree


@settings(SETTINGS, max_examples=2500)
@given(
    seed=st.integers(0, 5),
    edits=st.lists(header_edits, min_size=1, max_size=3),
    body=st.sampled_from(["same", "cut", "grow"]),
    ascii_only=st.booleans(),
)
def test_header_mutations(traced, seed, edits, body, ascii_only):
    header, data = split(seeds()[seed])
    tree = expand(header)
    for edit in edits:
        tree = apply_header(tree, edit)
    text = json.dumps(to_json(tree), ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    if body == "cut":
        data = data[: len(data) // 2]
    elif body == "grow":
        data = data + data[:16]
    check_load(struct.pack("<Q", len(text)) + text + data)


def test_seeds_load_bit_exactly():
    # The starting points are valid: each loads, and saves back to the same bytes.
    for data in seeds():
        assert mlpfast.io.to_bytes(mlpfast.io.from_bytes(data)) == data
