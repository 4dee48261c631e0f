"""Hostile model files: ursa.load either rebuilds the saved model exactly or raises ModelFileError.

Fuzzed with hypothesis over every estimator in the registry: truncations, flipped bytes, wrong
format names and versions, oversized and malformed headers, well-formed files whose JSON holds
wrong types or absurd values (with a valid checksum, as a deliberate attacker would write), and
pickle payloads. No code from a file ever runs, and nothing but ModelFileError escapes.
"""

import json
import pickle
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors import safe_open

import ursa
from ursa import ModelFileError
from conftest import make_sines, rewrite
from estimator_registry import ESTIMATORS
from reliability_log import record

FUZZ = settings(max_examples=25, derandomize=True, database=None, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])
X = make_sines(8, 10, 2)
IDS = [cls.__name__ for cls, _, _ in ESTIMATORS]


@pytest.fixture(scope="module", params=ESTIMATORS, ids=IDS)
def saved(request, tmp_path_factory):
    cls, params, outputs = request.param
    est = cls(**params).fit(make_sines(16, 10, 2))
    path = tmp_path_factory.mktemp(cls.__name__) / "model.ursa"
    est.save(path)
    reference = {m: getattr(est, m)(X) for m in outputs(est, 1, 1, 1)}
    return path.read_bytes(), reference, cls


def load_or_refuse(data: bytes, reference: dict, cls, tmp_path) -> str:
    """Load ``data``; a loaded model must reproduce the original's outputs exactly."""
    path = tmp_path / "fuzzed.ursa"
    path.write_bytes(data)
    try:
        model = ursa.load(path)
    except ModelFileError as exc:
        assert str(exc)  # a message, always
        return "refused"
    assert type(model) is cls
    for method, expected in reference.items():
        np.testing.assert_array_equal(getattr(model, method)(X), expected)
    return "loaded"


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10**9))
def test_truncated_files_are_refused(saved, tmp_path, cut):
    data, reference, cls = saved
    cut %= len(data)
    assert load_or_refuse(data[:cut], reference, cls, tmp_path) == "refused"
    record("hostile model file: truncated at a random byte", 1, "ModelFileError")


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, 10**9), st.integers(1, 255)), min_size=1,
                      max_size=4))
def test_flipped_bytes_are_refused_or_harmless(saved, tmp_path, flips):
    data, reference, cls = saved
    mutated = bytearray(data)
    for position, mask in flips:
        mutated[position % len(data)] ^= mask
    outcome = load_or_refuse(bytes(mutated), reference, cls, tmp_path)
    record("hostile model file: 1-4 random bytes flipped", 1,
           "ModelFileError, or (a flip in header whitespace) the identical model")
    assert outcome in ("refused", "loaded")


@FUZZ
@given(field=st.sampled_from(["format", "format_version", "class"]),
       value=st.text(max_size=30) | st.sampled_from(["0", "2", "99", "-1", "1.0", "ursa-model",
                                                     "os.system", "builtins.eval", "Sequences"]))
def test_wrong_format_version_or_class_is_refused(saved, tmp_path, field, value):
    data, reference, cls = saved
    original = {"format": "ursa-model", "format_version": "1", "class": cls.__name__}[field]
    mutated = rewrite(data, tmp_path, metadata_changes={field: value})
    outcome = load_or_refuse(mutated, reference, cls, tmp_path)
    assert outcome == ("loaded" if value == original else "refused")
    record("hostile model file: wrong format name, format version or class name", 1,
           "ModelFileError naming what is wrong")


@FUZZ
@given(length=st.integers(0, 2**64 - 1), header=st.binary(max_size=200))
@example(length=2**63, header=b"{}")
@example(length=100 * 2**20, header=b"{" + b" " * 100)
def test_oversized_or_malformed_headers_are_refused(saved, tmp_path, length, header):
    data, reference, cls = saved
    forged = struct.pack("<Q", length) + header + data[8:]
    assert load_or_refuse(forged, reference, cls, tmp_path) == "refused"
    record("hostile model file: forged header length and random header bytes", 1,
           "ModelFileError")


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=6,
)


@FUZZ
@given(key=st.integers(0, 10**6), value=JSON)
@example(key=0, value=10**12)
def test_json_with_wrong_types_or_absurd_values_is_refused_or_safe(saved, tmp_path, key, value):
    """A crafted file with a valid checksum: every field of the document replaced in turn."""
    data, reference, cls = saved
    with safe_open_bytes(data, tmp_path) as meta:
        document = json.loads(meta["document"])
    paths = [("params", k) for k in sorted(document["params"])]
    paths += [(k,) for k in sorted(document) if k != "params"]
    target = paths[key % len(paths)]
    if target == ("params", "hidden_size") or key == 0:
        target = ("params", "hidden_size")

    def change(doc):
        holder = doc
        for part in target[:-1]:
            holder = holder[part]
        holder[target[-1]] = value

    mutated = rewrite(data, tmp_path, document_changes=change)
    path = tmp_path / "crafted.ursa"
    path.write_bytes(mutated)
    try:
        model = ursa.load(path)
    except ModelFileError as exc:
        assert str(exc)
    else:  # the value was acceptable (a seed, a flag...): the model must still work or refuse
        assert type(model) is cls
        for method in reference:
            try:
                out = getattr(model, method)(X)
            except (ValueError, TypeError):
                continue
            assert np.isfinite(np.asarray(out, dtype=float)).all()
    record("hostile model file: a JSON field replaced by a wrong type or absurd value "
           "(valid checksum)", 1, "ModelFileError, or a model that works; never a crash or a "
           "huge allocation")


class _WritesFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (str(self.target), "w"))


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_pickle_payloads_never_run(saved, tmp_path, protocol):
    data, reference, cls = saved
    sentinel = tmp_path / "payload-ran"
    payload = pickle.dumps(_WritesFile(sentinel), protocol=protocol)
    for forged in (payload,  # a bare pickle (torch.save style)
                   data[:8] + payload + data[8 + len(payload):],  # pickle inside the header
                   data + payload):  # pickle appended after the tensors
        path = tmp_path / "evil.ursa"
        path.write_bytes(forged)
        with pytest.raises(ModelFileError):
            ursa.load(path)
        assert not sentinel.exists()
    record("hostile model file: pickle payload (bare, in the header, appended)", 3,
           "ModelFileError; the payload never runs")


class safe_open_bytes:
    """Read a saved file's metadata from bytes."""

    def __init__(self, data, tmp_path):
        self.path = tmp_path / "peek.ursa"
        self.path.write_bytes(data)

    def __enter__(self):
        with safe_open(str(self.path), framework="numpy") as fh:
            return dict(fh.metadata())

    def __exit__(self, *exc):
        return False
