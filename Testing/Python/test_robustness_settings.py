"""One settings schema (``core.settings.SETTINGS``) for the CLI, the Python API and the worker,
and worker requests that are malformed in any way: each gets one ``error`` reply (exit code 2)
and the worker stays up and answers the next request.

Before this, a worker request with ``"threshold": -1`` made the whole volume one lesion,
``"abc"`` or an overlap of 5 were internal errors, ``true`` silently became 1.0, a typo such as
``treshold`` was ignored, and a line nested 100,000 deep (``RecursionError``) or bytes that
are not UTF-8 ended the worker.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from TextLesionSegLib.errors import InputError, ModelError
from TextLesionSegLib.models.base import InferenceSettings
from TextLesionSegLib.core.settings import EXTRA_NAMES, FIELD_NAMES, MAPPING_NAMES, SETTINGS, split_mapping
from TextLesionSegLib.worker import protocol
from TextLesionSegLib.worker import server
from TextLesionSegLib.worker import testing as tiny

PACKAGE = Path(__file__).resolve().parents[2] / "TextLesionSeg" / "TextLesionSegLib"
TEXT = "round mass in the right lung"


# ---- the schema -----------------------------------------------------------------------------------
def test_schema_covers_every_field_and_every_extra_key_the_engine_reads():
    """A new field or ``settings.extra`` key must be typed in the table, or this fails."""
    fields = [f.name for f in dataclasses.fields(InferenceSettings) if f.name != "extra"]
    assert sorted(FIELD_NAMES) == sorted(fields)
    read = set()
    pattern = re.compile(r"settings\.extra(?: or \{\}\))?(?:\.get\(|\[)\"(\w+)\"")
    for path in PACKAGE.rglob("*.py"):
        read |= set(pattern.findall(path.read_text(encoding="utf-8")))
    answer = (PACKAGE / "pipeline" / "answer.py").read_text(encoding="utf-8")  # extra = settings.extra or {}
    read |= set(re.findall(r"\bextra(?:\.get\(|\[)\"(\w+)\"", answer))
    assert {"selection", "allow_non_ct", "min_score", "min_lesion_mm3", "slice_batch", "roi_kji",
            "prompt_free_min_score", "notes"} <= read, read  # the scan itself works
    assert read <= set(EXTRA_NAMES), f"extra keys read but not in core.settings.SETTINGS: {read - set(EXTRA_NAMES)}"
    for spec in SETTINGS.values():
        assert spec.help and spec.expect()
        if spec.default is not None and spec.kind != "list":
            assert spec.check(spec.default) == spec.default, spec.name  # every default is valid


def test_defaults_agree_with_the_engine():
    from TextLesionSegLib.pipeline.postprocess import DEFAULT_MIN_VOLUME_MM3
    from TextLesionSegLib.pipeline.selection import MODES

    assert SETTINGS["min_lesion_mm3"].default == DEFAULT_MIN_VOLUME_MM3
    assert set(SETTINGS["selection"].choices) == set(MODES)
    defaults = InferenceSettings()
    for name in FIELD_NAMES:
        assert getattr(defaults, name) == SETTINGS[name].default, name


BAD_VALUES = [
    ("threshold", -1, "above 0 and below 1, not -1"),
    ("threshold", 0, "above 0 and below 1"),
    ("threshold", 1, "above 0 and below 1"),
    ("threshold", "abc", "not 'abc' (text)"),
    ("threshold", "0.5", "not '0.5' (text)"),  # no coercion
    ("threshold", True, "not true (a yes/no value)"),
    ("threshold", float("nan"), "not nan"),
    ("threshold", float("inf"), "not inf"),
    ("threshold", None, "above 0 and below 1"),
    ("overlap", 5, "from 0 to 0.95, not 5"),
    ("overlap", -0.1, "from 0 to 0.95"),
    ("device", 7, "auto, cpu, cuda or cuda:N"),
    ("device", "tpu", "an unknown device"),
    ("device", "cuda:x", "an unknown device"),
    ("sw_batch_size", 0, "from 1 to 512"),
    ("sw_batch_size", 2.0, "whole number"),
    ("sw_batch_size", False, "whole number"),
    ("amp", 1, "true or false, not 1"),
    ("low_memory", "yes", "true or false"),
    ("selection", "best", "one of 'measured', 'network'"),
    ("allow_non_ct", 0, "true or false"),
    ("min_score", 1.5, "from 0 to 1"),
    ("prompt_free_min_score", -1, "from 0 to 1"),
    ("min_lesion_mm3", -5, "from 0 to 1e+06"),
    ("min_lesion_mm3", None, "from 0 to 1e+06"),
    ("slice_batch", 0, "from 1 to 1024"),
    ("roi_kji", [[0, 0, 0], [4, 4, 0]], "0 <= start < end"),
    ("roi_kji", [[0, 0], [4, 4]], "two corners"),
    ("roi_kji", [[0, 0, True], [4, 4, 4]], "two corners"),
    ("keep_all_candidates", "x", "true or false"),
]


@pytest.mark.parametrize("name, value, fragment", BAD_VALUES, ids=lambda v: repr(v)[:20])
def test_every_bad_value_is_one_line_naming_the_setting_and_what_it_accepts(name, value, fragment):
    for build in (lambda: InferenceSettings.from_mapping({name: value}),
                  lambda: InferenceSettings(**({name: value} if name in FIELD_NAMES else {"extra": {name: value}}))):
        with pytest.raises(InputError) as caught:
            build()
        message = str(caught.value)
        assert "\n" not in message and message.startswith(f"setting '{name}' must be "), message
        assert fragment in message, message


@pytest.mark.parametrize("mapping, fragment", [
    ({"treshold": 0.4}, "unknown setting 'treshold' (known: device, threshold"),
    ({"notes": []}, "unknown setting 'notes'"),  # the engine's own, never from a request
    ({"extra": {"notes": []}}, "unknown setting 'notes'"),
    ({"extra": []}, "setting 'extra' must be an object"),
    ([], "settings must be an object"),
    ("threshold=0.4", "settings must be an object"),
])
def test_unknown_keys_and_non_objects_are_refused(mapping, fragment):
    with pytest.raises(InputError, match=re.escape(fragment)):
        InferenceSettings.from_mapping(mapping)


def test_good_values_are_normalised_and_round_trip():
    s = InferenceSettings.from_mapping({"device": " CUDA:1 ", "threshold": np.float32(0.25), "overlap": 0,
                                        "sw_batch_size": np.int64(3), "amp": np.bool_(False), "selection": "network",
                                        "extra": {"min_score": 0.2}, "roi_kji": [[0, 1, 2], [3, 4, 5]]})
    assert (s.device, s.threshold, s.overlap, s.sw_batch_size, s.amp) == ("cuda:1", 0.25, 0.0, 3, False)
    assert type(s.threshold) is float and type(s.sw_batch_size) is int and type(s.amp) is bool
    assert s.extra == {"selection": "network", "min_score": 0.2, "roi_kji": ((0, 1, 2), (3, 4, 5))}
    assert InferenceSettings.from_mapping(dataclasses.asdict(s)) == s
    assert InferenceSettings.from_mapping(None) == InferenceSettings.from_mapping({}) == InferenceSettings()
    assert InferenceSettings.from_mapping(json.loads(json.dumps({"sw_batch_size": None, "min_score": None}))) \
        == InferenceSettings(extra={"min_score": None})
    replaced = dataclasses.replace(s, extra={**s.extra, "min_score": 0.0})  # what the evaluation code does
    assert replaced.extra["min_score"] == 0.0
    with pytest.raises(InputError, match="setting 'threshold'"):
        dataclasses.replace(s, threshold=2.0)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**20, 10**20) | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _plausible(spec) -> st.SearchStrategy:
    """Values near what a setting accepts: in range, at the edges, just outside, of the wrong kind."""
    if spec.kind in ("float", "int"):
        lo = spec.low if spec.low is not None else -1e3
        hi = spec.high if spec.high is not None else 1e3
        edges = [lo, hi, lo - 1, hi + 1, (lo + hi) / 2]
        numbers_ = st.floats(lo - 1, hi + 1) if spec.kind == "float" else st.integers(int(lo) - 1, int(hi) + 1)
        return st.sampled_from(edges) | numbers_ | st.integers(int(lo) - 1, int(hi) + 1)
    if spec.kind == "choice":
        return st.sampled_from(spec.choices + ("x", ""))
    if spec.kind == "device":
        return st.sampled_from(["auto", "cpu", "cuda", "cuda:0", "cuda:12", "CPU", "cuda:", "mps", " cpu "])
    if spec.kind == "box":
        return st.lists(st.lists(st.integers(-1, 5), min_size=2, max_size=4), min_size=1, max_size=3)
    return st.booleans()


def _settings_mapping() -> st.SearchStrategy:
    names = st.sampled_from(list(SETTINGS)) | st.text(max_size=8)
    return st.dictionaries(names, _json, max_size=4) | st.fixed_dictionaries(
        {}, optional={name: _plausible(spec) | _json for name, spec in SETTINGS.items()})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_settings_mapping() | _json)
def test_any_settings_mapping_is_accepted_in_range_or_refused_with_one_line(mapping):
    try:
        s = InferenceSettings.from_mapping(mapping)
    except InputError as exc:
        assert "\n" not in str(exc) and len(str(exc)) < 400
        return
    for name in FIELD_NAMES:
        assert SETTINGS[name].problem(getattr(s, name))[1] is None
    assert 0 < s.threshold < 1 and 0 <= s.overlap <= 0.95 and math.isfinite(s.threshold)
    assert set(s.extra) <= set(MAPPING_NAMES)
    assert split_mapping(mapping) is not None


# ---- the Python API and the CLI ---------------------------------------------------------------------
def _image():
    from test_engine_helpers import add_ellipsoid, grid_image

    img = grid_image((24, 40, 40), (1.0, 1.0, 2.0), np.eye(3), (0.0, 0.0, 0.0), fill=-1000.0)
    add_ellipsoid(img, (0, 0, 0), (16, 16, 40), 0.0)
    add_ellipsoid(img, (-4, 3, 2), (6, 6, 6), 200.0)
    return img


def test_python_api_segment_validates_settings_before_anything_runs():
    from test_engine_run import ThresholdSegmenter
    from TextLesionSegLib.pipeline.run import find_lesions, segment

    img, model = _image(), ThresholdSegmenter()
    for bad in ({"threshold": -1}, {"device": "cpu", "overlap": 1.5}, {"device": "cpu", "treshold": 0.4}, [0.5]):
        with pytest.raises(InputError, match="setting|settings must be"):
            segment(img, [TEXT], model, settings=bad)
        with pytest.raises(InputError, match="setting|settings must be"):
            find_lesions(img, model, settings=bad)
    mutated = InferenceSettings(device="cpu")
    mutated.threshold = -1  # the dataclass is mutable: segment() checks again
    with pytest.raises(InputError, match="setting 'threshold' must be a number above 0 and below 1, not -1"):
        segment(img, [TEXT], model, mutated)
    assert model.windows == 0  # the model never ran
    as_dict = segment(img, [TEXT], model, settings={"device": "cpu", "threshold": 0.5, "selection": "network"})
    as_object = segment(img, [TEXT], model, InferenceSettings(device="cpu", extra={"selection": "network"}))
    assert as_dict.segments[0].mask.any()
    assert np.array_equal(as_dict.segments[0].mask, as_object.segments[0].mask)


@pytest.mark.parametrize("option, value, name", [
    ("--threshold", "-1", "threshold"), ("--threshold", "nan", "threshold"), ("--threshold", "inf", "threshold"),
    ("--threshold", "abc", "threshold"), ("--threshold", "1", "threshold"), ("--overlap", "1.5", "overlap"),
    ("--sw-batch-size", "0", "sw_batch_size"), ("--sw-batch-size", "2.5", "sw_batch_size"),
    ("--device", "tpu", "device"),
])
def test_cli_out_of_range_options_exit_2_with_one_line_naming_the_schema_range(tmp_path, capsys, option, value, name):
    from TextLesionSegLib.cli import main

    with pytest.raises(SystemExit) as caught:
        main(["segment", str(tmp_path / "ct.nrrd"), "--text", TEXT, "--output", str(tmp_path / "o.seg.nrrd"),
              option, value])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert caught.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    spec = SETTINGS[name]
    allowed = spec.range_text() if spec.kind in ("float", "int") else "auto, cpu, cuda or cuda:N"
    assert f"argument {option}: must be " in lines[0] and allowed in lines[0] and repr(value) in lines[0], lines[0]
    assert list(tmp_path.iterdir()) == []


def test_cli_help_and_defaults_come_from_the_schema():
    import argparse

    from TextLesionSegLib.cli import build_parser
    from TextLesionSegLib.cli.segment import check_options

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["segment"]
    actions = {a.dest: a for a in sub._actions}
    for name in ("threshold", "overlap", "sw_batch_size", "device", "selection"):
        spec = SETTINGS[name]
        assert actions[name].default == spec.default and spec.help in actions[name].help.replace("%%", "%"), name
    assert "above 0 and below 1" in actions["threshold"].help and "from 0 to 0.95" in actions["overlap"].help
    assert tuple(actions["selection"].choices) == SETTINGS["selection"].choices
    args = sub.parse_args(["ct.nrrd", "--text", TEXT, "-o", "o.seg.nrrd", "--device", "CPU", "--threshold", "0.3"])
    assert args.device == "cpu" and args.threshold == 0.3
    args.overlap = 1.5  # a Namespace changed by a script
    with pytest.raises(InputError, match=r"^--overlap must be a number from 0 to 0\.95, not 1\.5$"):
        check_options(args)


# ---- the worker protocol --------------------------------------------------------------------------
def _good(**fields) -> dict:
    return {"type": "segment", "id": "g", "image_path": "ct.nrrd", "texts": [TEXT], "model": "tiny",
            "settings": {"device": "cpu"}, "keep_probability": False, "output_dir": None, **fields}


MALFORMED = [
    (_good(settings={"threshold": -1}), "setting 'threshold' must be a number above 0 and below 1, not -1"),
    (_good(settings={"threshold": "abc"}), "setting 'threshold' must be a number above 0 and below 1, not 'abc'"),
    (_good(settings={"threshold": True}), "not true (a yes/no value)"),
    (_good(settings={"overlap": 5}), "setting 'overlap' must be a number from 0 to 0.95, not 5"),
    (_good(settings={"device": 7}), "setting 'device' must be auto, cpu, cuda or cuda:N"),
    (_good(settings={"treshold": 0.4}), "unknown setting 'treshold'"),
    (_good(settings=[]), "settings must be an object"),
    (_good(settings="cpu"), "settings must be an object"),
    (_good(texts="x"), "request 'texts' must be a list of descriptions, not 'x' (text)"),
    (_good(texts=[1, 2]), "request 'texts[0]' must be a string, not 1"),
    (_good(texts=[]), "at least one description"),
    (_good(texts=[TEXT] * (protocol.MAX_TEXTS + 1)), f"more than the {protocol.MAX_TEXTS} allowed"),
    (_good(texts=["x" * (protocol.MAX_TEXT_CHARS + 1)]), f"more than the {protocol.MAX_TEXT_CHARS} allowed"),
    (_good(image_path=5), "request 'image_path' must be a string, not 5"),
    (_good(image_path=""), "request has no image_path"),
    (_good(image_path="ct\x00.nrrd"), "NUL character"),
    (_good(output_dir=["a"]), "request 'output_dir' must be a string"),
    (_good(model={"name": "tiny"}), "request 'model' must be a string, not an object"),
    (_good(keep_probability="yes"), "request 'keep_probability' must be true or false"),
    (_good(id=["r1"]), "request 'id' must be a string of at most"),
    (_good(id="r" * (protocol.MAX_ID_CHARS + 1)), "request 'id' must be a string of at most"),
    (_good(colour="red"), "unknown request field 'colour'"),
    (_good(protocol=True), "worker protocol true"),
    (_good(protocol="1"), "worker protocol '1'"),
    ({"type": ["segment"]}, "unknown request type a list of 1"),
    ({"type": "load", "settings": {"device": "gpu"}}, "an unknown device"),
    ({"type": "find_lesions", "image_path": "ct.nrrd", "settings": {"prompt_free_min_score": 2}}, "from 0 to 1"),
    ({"type": "status", "settings": {"amp": "no"}}, "setting 'amp' must be true or false"),
]


@pytest.mark.parametrize("request_, fragment", MALFORMED, ids=lambda v: str(v)[:40])
def test_malformed_requests_are_one_line_input_errors(request_, fragment):
    with pytest.raises(InputError) as caught:
        protocol.check_request(request_)
    assert fragment in str(caught.value) and "\n" not in str(caught.value)
    # what the worker gets from the pipe is the same request
    with pytest.raises(InputError):
        protocol.check_request(protocol.decode(protocol.encode(request_)))


def test_well_formed_requests_pass():
    for request in (_good(), _good(output_dir="out", model=None, id=7), {"type": "status"}, {"type": "shutdown", "id": 1},
                    {"type": "load", "model": "tiny", "settings": {"device": "cpu"}},
                    {"type": "find_lesions", "image_path": "ct.nrrd", "texts": [], "settings": None},
                    _good(settings={"threshold": 0.3, "overlap": 0.25, "low_memory": True, "sw_batch_size": 2,
                                    "selection": "network", "allow_non_ct": True, "min_lesion_mm3": 10})):
        protocol.check_request(request)


def test_decode_refuses_deep_nesting_and_over_long_lines():
    for depth in (100_000, protocol.MAX_DEPTH + 1):
        with pytest.raises(ValueError, match="nest at most"):
            protocol.decode('{"type": "status", "id": ' + "[" * depth + "]" * depth + "}")
    deep_ok = '{"type": "status", "x": ' + "[" * (protocol.MAX_DEPTH - 1) + "]" * (protocol.MAX_DEPTH - 1) + "}"
    assert protocol.decode(deep_ok)["type"] == "status"
    with pytest.raises(ValueError, match="longer than"):
        protocol.decode('{"type": "status", "x": "' + "a" * protocol.MAX_LINE_CHARS + '"}')
    assert protocol.request_id({"id": "r1"}) == "r1" and protocol.request_id({"id": 3}) == 3
    assert protocol.request_id({"id": True}) is None and protocol.request_id({"id": [1]}) is None
    assert protocol.request_id({"id": 2**60}) is None and protocol.request_id([]) is None


@pytest.fixture
def stubbed_state(monkeypatch):
    """A worker whose models fail to load (exit 3): a request that gets that far passed every check."""
    def no_model(self, name, device, progress):
        raise ModelError("stub: no model in this test")

    monkeypatch.setattr(server.WorkerState, "model", no_model)
    monkeypatch.setattr(server, "compute_status", lambda: {"installed": False})
    monkeypatch.setattr(server, "_warm_up", None)


def _request_strategy() -> st.SearchStrategy:
    field_values = {
        "protocol": st.just(protocol.PROTOCOL_VERSION) | _json,
        "id": st.text(max_size=10) | st.integers() | _json,
        "image_path": st.just("ct.nrrd") | _json,
        "texts": st.lists(st.text(max_size=20), max_size=3) | _json,
        "model": st.just("tiny") | _json,
        "settings": _settings_mapping() | _json,
        "keep_probability": st.booleans() | _json,
        "output_dir": st.none() | _json,
    }
    known = st.fixed_dictionaries({"type": st.sampled_from(protocol.REQUEST_TYPES) | _json}, optional=field_values)
    # a well-formed request (valid settings of any kind) with one field replaced, added or dropped
    valid = st.fixed_dictionaries({}, optional={name: _valid(spec) for name, spec in SETTINGS.items()
                                                if not spec.internal})
    base = st.builds(lambda kind, s: {**_good(settings=s), "type": kind}, st.sampled_from(protocol.REQUEST_TYPES), valid)
    one_off = st.builds(_replace_one, base, st.sampled_from(protocol.REQUEST_FIELDS + ("colour",)),
                        st.none() | st.just(_DROP) | _json | st.sampled_from(list(field_values.values())).flatmap(lambda x: x))
    return base | one_off | known | st.dictionaries(st.text(max_size=10), _json, max_size=4)


_DROP = object()


def _replace_one(request: dict, key: str, value) -> dict:
    request = dict(request)
    if value is _DROP:
        request.pop(key, None)
    else:
        request[key] = value
    return request


def _valid(spec) -> st.SearchStrategy:
    """Values a setting accepts."""
    if spec.kind in ("float", "int"):
        lo, hi = spec.low, spec.high
        if spec.kind == "int":
            values = st.integers(int(lo), int(hi))
        else:
            values = st.floats(lo, hi, exclude_min=spec.low_open, exclude_max=spec.high_open)
        return (st.none() | values) if spec.optional else values
    if spec.kind == "choice":
        return st.sampled_from(spec.choices)
    if spec.kind == "device":
        return st.sampled_from(["auto", "cpu", "cuda", "cuda:0", "CPU"])
    if spec.kind == "box":
        return st.just([[0, 0, 0], [4, 5, 6]]) | st.none()
    return st.booleans()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(_request_strategy())
def test_any_request_gets_one_reply_and_the_worker_answers_the_next(stubbed_state, request_):
    """Random JSON for each field, through the worker's own loop (``serve``) and its pipe format."""
    lines = protocol.encode(request_) + protocol.encode({"type": "status", "id": "next"})
    out = io.StringIO()
    assert server.serve(io.StringIO(lines), out) == 0
    replies = [json.loads(line) for line in out.getvalue().splitlines()]
    assert replies[0]["type"] == "ready"
    finals = [r for r in replies[1:] if r["type"] != "progress"]
    try:
        protocol.check_request(request_)
        accepted = True
    except InputError:
        accepted = False
    first = finals[0]
    assert first["id"] == protocol.request_id(request_)
    if not accepted:
        assert first["type"] == "error" and first["exit_code"] == 2 and "\n" not in first["message"], first
    elif request_["type"] in ("segment", "find_lesions", "refine", "load"):
        # the settings the check passed are the settings _run_model builds: it reaches the model
        assert first["type"] == "error" and first["exit_code"] == 3 and "stub" in first["message"], first
    else:
        assert first["type"] == "status", first
    if accepted and request_["type"] == "shutdown":
        assert len(finals) == 1
    else:
        assert len(finals) == 2 and finals[1]["type"] == "status" and finals[1]["id"] == "next", finals


# ---- a real worker process ------------------------------------------------------------------------
def test_real_worker_answers_each_malformed_line_with_an_error_then_still_segments(tmp_path):
    from TextLesionSegLib.worker.client import PACKAGE_PARENT

    registry = tiny.write_test_registry(tmp_path / "site", {"tiny": {}})
    image = tiny.write_phantom(tmp_path / "phantom.nrrd")
    good = {"type": "segment", "image_path": str(image), "texts": [TEXT], "model": "tiny",
            "settings": {"device": "cpu"}, "output_dir": str(tmp_path / "out")}

    def line(request: dict) -> bytes:
        return protocol.encode(request).encode("utf-8")

    bad: list[tuple[bytes, str]] = [
        (line({**good, "id": "t-1", "settings": {"device": "cpu", "threshold": -1}}), "setting 'threshold'"),
        (line({**good, "id": "t-abc", "settings": {"threshold": "abc"}}), "setting 'threshold'"),
        (line({**good, "id": "t-true", "settings": {"threshold": True}}), "setting 'threshold'"),
        (line({**good, "id": "o-5", "settings": {"overlap": 5}}), "setting 'overlap'"),
        (line({**good, "id": "d-7", "settings": {"device": 7}}), "setting 'device'"),
        (line({**good, "id": "x", "texts": "x"}), "request 'texts' must be a list"),
        (line({**good, "id": "ints", "texts": [1, 2]}), "request 'texts[0]'"),
        (line({**good, "id": "list", "settings": []}), "settings must be an object"),
        (b'{"type": "status", "id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "nest at most"),
        (line({**good, "id": "10MB", "texts": ["x" * 10_000_000]}), "request 'texts[0]' has 10000000 characters"),
        (b'{"type": "status", "x": "' + b"a" * (protocol.MAX_LINE_CHARS + 1) + b'"}\n', "longer than"),
        (b'\xff\xfe{"type": "status"}\n', "unreadable request line"),  # not UTF-8
        (b"{\n", "unreadable request line"),
    ]
    stdin = b"".join(raw for raw, _ in bad) + line({"type": "status", "id": "after"}) + line({**good, "id": "good"}) \
        + line({"type": "shutdown", "id": "bye"})
    env = {**os.environ, "TEXTLESIONSEG_EXTRA_REGISTRY": str(registry), "PYTHONIOENCODING": "utf-8:strict",
           "PYTHONPATH": os.pathsep.join(p for p in (str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")) if p)}
    proc = subprocess.run([sys.executable, "-m", "TextLesionSegLib.worker"], input=stdin, capture_output=True,
                          env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr.decode("utf-8", "replace")[-3000:]
    replies = [json.loads(raw) for raw in proc.stdout.decode("utf-8").splitlines()]
    finals = [r for r in replies if r["type"] not in ("progress", "ready")]
    assert len(finals) == len(bad) + 3, finals
    for (_, fragment), reply in zip(bad, finals):
        assert reply["type"] == "error" and reply["exit_code"] == 2, reply
        assert fragment in reply["message"] and "\n" not in reply["message"] and len(reply["message"]) < 500, reply
    status, result, bye = finals[len(bad):]
    assert status["type"] == "status" and status["id"] == "after" and status["requests_done"] == len(bad) - 4
    assert result["type"] == "result" and result["id"] == "good", result
    seg = protocol.load_result(result["result_path"]).segments[0]
    assert len(seg.lesions) == 1 and seg.lesions[0].mean_hu == pytest.approx(150.0)  # the phantom's sphere
    assert 0 < int(seg.mask.sum()) < seg.mask.size // 10  # not the whole volume
    assert bye["type"] == "status" and bye.get("shutting_down") is True
