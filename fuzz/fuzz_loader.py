"""Coverage-guided fuzzing of the model-file loader, for runs longer than CI's.

Every input is handed to ``mlpfast.io.from_bytes``; it must return a model or raise
ValueError. Anything else (another exception, a crash, a hang, memory beyond the cap)
is a finding: atheris stops and writes the input to ``crash-*`` in the working directory.
tests/test_fuzz_loader.py runs the same check on hypothesis-mutated files in every CI run.

    pip install ".[fuzz]"
    python fuzz/fuzz_loader.py fuzz/corpus -runs=1000000 -rss_limit_mb=2048 -max_len=1000000

The first run writes the seed corpus (files of every kind mlpfast saves) into an empty
corpus directory. Half the mutations edit the JSON header as a tree (a value replaced by
a hostile one, deleted, repeated or nudged), since byte edits rarely keep it parsable; the
other half are libFuzzer's own. Coverage is measured over mlpfast's Python modules, which
hold the whole loader (the header, the tensors and the estimator fields).
"""

from __future__ import annotations

import json
import os
import random
import struct
import sys

import atheris

with atheris.instrument_imports(include=["mlpfast"]):
    import mlpfast
    import mlpfast._fields
    import mlpfast._modelfile

    try:  # the estimators' part of the loader, when scikit-learn is installed
        import mlpfast.sklearn._files
    except ImportError:
        pass

from seeds import seed_files  # fuzz/seeds.py, beside this script


def write_corpus(directory: str) -> None:
    os.makedirs(directory, exist_ok=True)
    if os.listdir(directory):
        return
    for i, data in enumerate(seed_files()):
        with open(os.path.join(directory, f"seed-{i}.mlpfast"), "wb") as f:
            f.write(data)


# Values that have broken loaders: sizes past every integer type, dtypes numpy parses in
# surprising ways, markers of the file's own encoding, deep nesting, huge repeats.
HOSTILE = [
    None,
    True,
    -1,
    0,
    1,
    2**31,
    2**32 + 1,
    2**53 + 1,
    2**63 - 1,
    2**63,
    2**64,
    2**70,
    10**400,
    1e308,
    -0.0,
    float("nan"),
    float("inf"),
    "",
    "F32",
    "F64",
    "I64",
    "f4,(",
    "<U999999",
    "<U0",
    "<f8\n",
    "V8",
    "|b1",
    "O",
    "float32",
    "MLP",
    "estimator",
    "maxout",
    "__ndarray__",
    "__tuple__",
    "__float__",
    "x" * 5000,
    [],
    {},
    [[[[[[[[0]]]]]]]],
    {"__ndarray__": {"dtype": "<U999999", "shape": [1000], "values": []}},
    {"__ndarray__": {"dtype": "<i8", "shape": [2**40], "values": [1]}},
    {"__tuple__": [1, 2]},
    {"__float__": "nan"},
]


def split(data: bytes):
    """The header as a JSON tree (metadata strings that hold JSON parsed too) and the body."""
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    meta = header.get("__metadata__", {})
    for key, text in list(meta.items()):
        try:
            meta[key] = ["__embedded__", json.loads(text)]
        except (TypeError, ValueError):
            pass
    return header, data[8 + n :]


def join(header, body: bytes) -> bytes:
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if isinstance(meta, dict):
        for key, value in list(meta.items()):
            if isinstance(value, list) and len(value) == 2 and value[0] == "__embedded__":
                meta[key] = json.dumps(value[1])
    text = json.dumps(header).encode()
    return struct.pack("<Q", len(text)) + text + body


def slots(node):
    """(container, key) for every value in the tree."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield node, k
            yield from slots(v)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield node, i
            yield from slots(v)


def edit_header(data: bytes, rng: random.Random) -> bytes | None:
    """One structural edit of the header: replace, delete, repeat or nudge a value."""
    try:
        header, body = split(data)
    except Exception:
        return None
    where = list(slots(header))
    if not where:
        return None
    parent, key = rng.choice(where)
    value = parent[key]
    op = rng.randrange(4)
    if op == 0:
        parent[key] = rng.choice(HOSTILE)
    elif op == 1 and isinstance(parent, dict):
        del parent[key]
    elif op == 2 and isinstance(value, list):
        parent[key] = value * rng.choice([2, 10, 1000])
    elif isinstance(value, int) and not isinstance(value, bool):
        parent[key] = value + rng.randint(-3, 3)
    else:
        parent[key] = rng.choice(HOSTILE)
    try:
        return join(header, body)
    except (TypeError, ValueError):
        return None


def mutate(data: bytes, max_size: int, seed: int) -> bytes:
    """Half the time a structural edit of the header, otherwise libFuzzer's byte edits."""
    rng = random.Random(seed)
    if rng.random() < 0.5:
        edited = edit_header(data, rng)
        if edited is not None and len(edited) <= max_size:
            return edited
    return atheris.Mutate(data, max_size)


def one_input(data: bytes) -> None:
    try:
        mlpfast.io.from_bytes(data)
    except ValueError:
        pass  # a refused file: the promised outcome


def main() -> None:
    corpus = [a for a in sys.argv[1:] if not a.startswith("-")]
    if corpus:
        write_corpus(corpus[0])
    atheris.Setup(sys.argv, one_input, custom_mutator=mutate)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
