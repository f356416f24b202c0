"""Every inference setting in one table: name, type, default, allowed values and help text.

:data:`SETTINGS` is the single definition that serves every entry point:

* :class:`~.types.InferenceSettings` checks its fields and its ``extra`` dict against it when it
  is built (``__post_init__``) and again in ``pipeline.run.segment``/``find_lesions`` (the
  dataclass is mutable); :meth:`~.types.InferenceSettings.from_mapping` builds one from a plain
  dict (the Python API's ``settings={...}``, the worker's ``request["settings"]``);
* the command line takes its ``--threshold``/``--overlap``/``--device``/``--sw-batch-size``/
  ``--selection`` ranges, choices, defaults and help from it (:func:`cli_type`, :meth:`Setting.cli_help`);
* the worker protocol (``worker.protocol.check_request``) validates a request's settings with it.

Rules (the same everywhere):

* a value has the declared type; nothing is coerced: the string ``"0.5"`` is not a number
  (the CLI converts its own text arguments with :func:`cli_type`), ``true`` is not a number,
  ``1`` is not a yes/no value, ``2.0`` is not a whole number;
* numbers must be finite (NaN and infinities are refused) and inside the declared range;
* an unknown key is refused with the list of known ones (a typo such as ``treshold`` would
  otherwise be ignored silently); ``notes`` is written by the engine itself and refused from
  a mapping;
* every refusal is one ``InputError`` line naming the setting and what it accepts, e.g.
  ``setting 'threshold' must be a number above 0 and below 1, not -1``.

This module imports the standard library and numpy only (Slicer and the worker's error path
load it before torch is installed).
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import InputError

#: what ``device`` accepts (case-insensitive; surrounding spaces are dropped)
DEVICE_PATTERN = re.compile(r"(auto|cpu|cuda(:[0-9]{1,2})?)")
DEVICE_TEXT = "auto, cpu, cuda or cuda:N (N a GPU index)"


@dataclass(frozen=True)
class Setting:
    """One inference setting.

    Attributes:
        name: key in a settings mapping (and field of ``InferenceSettings`` unless ``extra``).
        kind: ``float``, ``int``, ``bool``, ``choice``, ``device``, ``box`` (``roi_kji``) or
            ``list`` (internal ``notes``).
        default: the value when the setting is not given (for ``extra`` keys: what the engine
            uses when the key is absent; ``None`` there means "the model's own").
        help: one line for ``--help`` and the docs.
        low, high: inclusive range of a number unless ``low_open``/``high_open``.
        choices: allowed strings of a ``choice``.
        optional: ``None`` (JSON ``null``) is allowed and means the default.
        extra: lives in ``InferenceSettings.extra`` rather than in a field.
        internal: set by the engine during a run; refused from a mapping.
        cli: the command-line option of ``textlesionseg segment`` that sets it, if any.
    """

    name: str
    kind: str
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    optional: bool = False
    extra: bool = False
    internal: bool = False
    cli: str | None = None

    # ---- what it accepts ------------------------------------------------------------------------
    def expect(self, cli: bool = False) -> str:
        """What a valid value is, in words (the tail of every error message); ``cli``: for an option."""
        if self.kind in ("float", "int"):
            noun = "a number" if self.kind == "float" else "a whole number"
            text = f"{noun} {self.range_text()}"
        elif self.kind == "bool":
            text = "true or false"
        elif self.kind == "choice":
            text = "one of " + ", ".join(repr(c) for c in self.choices)
        elif self.kind == "device":
            text = DEVICE_TEXT
        elif self.kind == "box":
            text = "two corners [[k0, j0, i0], [k1, j1, i1]] of whole numbers, 0 <= start < end"
        else:
            text = "a list"
        return text + (", or null (the default)" if self.optional and not cli else "")

    def range_text(self) -> str:
        """``above 0 and below 1``, ``from 0 to 0.95``, ``at least 1``..."""
        lo = None if self.low is None else f"{'above' if self.low_open else 'at least'} {_num(self.low)}"
        hi = None if self.high is None else f"{'below' if self.high_open else 'at most'} {_num(self.high)}"
        if lo and hi:
            if not self.low_open and not self.high_open:
                return f"from {_num(self.low)} to {_num(self.high)}"
            return f"{lo} and {hi}"
        return lo or hi or "(any finite value)"

    def cli_help(self, extra: str = "") -> str:
        """``--help`` text: the help line, the range or choices, and the default."""
        if self.kind in ("float", "int"):
            allowed = self.range_text()
        elif self.kind == "device":
            allowed = DEVICE_TEXT
        else:
            allowed = ""
        default = "automatic" if self.default is None else self.default
        parts = [self.help + (f" ({extra})" if extra else "")]
        parts.append(f"{allowed}; default {default}" if allowed else f"default {default}")
        return "; ".join(parts).replace("%", "%%")

    # ---- checking -------------------------------------------------------------------------------
    def check(self, value: Any, label: str | None = None) -> Any:
        """The value, normalised (``float``/``int``/``bool``/lower-case device), or ``InputError``.

        ``label`` names the setting in the message (default ``setting 'NAME'``).
        """
        normal, problem = self.problem(value)
        if problem is not None:
            raise InputError(f"{label or f'setting {self.name!r}'} {problem}")
        return normal

    def problem(self, value: Any) -> tuple[Any, str | None]:
        """``(normalised value, None)``, or ``(None, "must be ..., not ...")`` for a bad value."""
        if value is None:
            ok, normal = self.optional, None
        else:
            ok, normal = _CHECKERS[self.kind](self, value)
        if ok:
            return normal, None
        shown = describe(value)
        if self.kind == "device" and isinstance(value, str):
            shown = f"{_short(value)} (an unknown device)"
        return None, f"must be {self.expect()}, not {shown}"

    def in_range(self, number: float) -> bool:
        if self.low is not None and (number <= self.low if self.low_open else number < self.low):
            return False
        if self.high is not None and (number >= self.high if self.high_open else number > self.high):
            return False
        return True


def _num(x: float) -> str:
    return f"{x:g}"


def _short(value: str, limit: int = 40) -> str:
    return repr(value if len(value) <= limit else value[: limit - 1] + "…")


def describe(value: Any) -> str:
    """A value as an error message shows it: short, with its JSON kind where that helps."""
    if value is None:
        return "null"
    if isinstance(value, (bool, np.bool_)):
        return f"{str(bool(value)).lower()} (a yes/no value)"
    if isinstance(value, str):
        return f"{_short(value)} (text)"
    if isinstance(value, numbers.Number):
        text = repr(float(value)) if isinstance(value, float) else repr(value)
        return text if len(text) <= 40 else text[:39] + "…"
    if isinstance(value, (list, tuple)):
        return f"a list of {len(value)}" if value else "an empty list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def _check_float(spec: Setting, value: Any) -> tuple[bool, Any]:
    if _is_bool(value) or not isinstance(value, numbers.Real):
        return False, None
    number = float(value)
    return (math.isfinite(number) and spec.in_range(number)), number


def _check_int(spec: Setting, value: Any) -> tuple[bool, Any]:
    if _is_bool(value) or not isinstance(value, numbers.Integral):
        return False, None
    number = int(value)
    return spec.in_range(number), number


def _check_bool(spec: Setting, value: Any) -> tuple[bool, Any]:
    return (True, bool(value)) if _is_bool(value) else (False, None)


def _check_choice(spec: Setting, value: Any) -> tuple[bool, Any]:
    return (isinstance(value, str) and value in spec.choices), value


def _check_device(spec: Setting, value: Any) -> tuple[bool, Any]:
    if not isinstance(value, str):
        return False, None
    name = value.strip().lower()
    return DEVICE_PATTERN.fullmatch(name) is not None, name


#: a box corner is at most this far from the origin, in voxels of the working grid
MAX_BOX_INDEX = 100_000


def _check_box(spec: Setting, value: Any) -> tuple[bool, Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return False, None
    corners = []
    for corner in value:
        if not isinstance(corner, (list, tuple)) or len(corner) != 3:
            return False, None
        if not all(isinstance(v, numbers.Integral) and not _is_bool(v) and 0 <= v <= MAX_BOX_INDEX for v in corner):
            return False, None
        corners.append(tuple(int(v) for v in corner))
    start, end = corners
    return all(a < b for a, b in zip(start, end)), (start, end)


def _check_list(spec: Setting, value: Any) -> tuple[bool, Any]:
    return isinstance(value, list), value


_CHECKERS: dict[str, Callable[[Setting, Any], "tuple[bool, Any]"]] = {
    "float": _check_float, "int": _check_int, "bool": _check_bool, "choice": _check_choice,
    "device": _check_device, "box": _check_box, "list": _check_list,
}

#: mirrors ``pipeline.postprocess.DEFAULT_MIN_VOLUME_MM3`` (test_robustness_settings checks they agree)
DEFAULT_MIN_LESION_MM3 = 30.0

#: every setting, by name: the fields of ``InferenceSettings`` first, then its ``extra`` keys
SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("device", "device", "auto", "compute device: auto is the first GPU if any, else the CPU",
            cli="--device"),
    Setting("threshold", "float", 0.5, "probability above which a voxel belongs to the lesion",
            low=0.0, high=1.0, low_open=True, high_open=True, cli="--threshold"),
    Setting("overlap", "float", 0.5, "sliding-window overlap of 3D models (more: smoother and slower)",
            low=0.0, high=0.95, cli="--overlap"),
    Setting("sw_batch_size", "int", None, "windows per forward pass (automatic: 4 on a CPU, 1 on a GPU)",
            low=1, high=512, optional=True, cli="--sw-batch-size"),
    Setting("amp", "bool", True, "mixed precision on CUDA"),
    Setting("low_memory", "bool", False, "one query at a time, batch 1 (slower, less memory)", cli="--low-memory"),
    # ---- InferenceSettings.extra ----
    Setting("selection", "choice", "measured",
            "how each description's lesion is chosen among the candidates: the network's score times the "
            "agreement of measured side, density, size and shape with the words (measured), or the network's "
            "score alone (network)", choices=("measured", "network"), extra=True, cli="--selection"),
    Setting("allow_non_ct", "bool", False, "continue on images that do not look like CT", extra=True,
            cli="--allow-non-ct"),
    Setting("min_score", "float", None, "'not found' threshold of a description's best candidate "
            "(null: the model's calibrated one)", low=0.0, high=1.0, optional=True, extra=True),
    Setting("prompt_free_min_score", "float", None, "prompt-free mode: lesions scoring below are not reported "
            "(null: the model's calibrated threshold)", low=0.0, high=1.0, optional=True, extra=True),
    Setting("min_lesion_mm3", "float", DEFAULT_MIN_LESION_MM3, "connected components smaller than this "
            "(mm^3) are dropped", low=0.0, high=1e6, extra=True),
    Setting("slice_batch", "int", None, "slices per forward pass of 2D models (absent: the model's own)",
            low=1, high=1024, extra=True),
    Setting("roi_kji", "box", None, "restrict the search to a box of the working grid (LSMS)",
            optional=True, extra=True),
    Setting("keep_all_candidates", "bool", False, "accepted for older callers; no model reads it at present",
            extra=True),
    Setting("notes", "list", None, "run notes the engine collects (set by pipeline.run)", extra=True,
            internal=True),
)}

#: names of the ``InferenceSettings`` fields (all but ``extra``) and of the ``extra`` keys
FIELD_NAMES: tuple[str, ...] = tuple(n for n, s in SETTINGS.items() if not s.extra)
EXTRA_NAMES: tuple[str, ...] = tuple(n for n, s in SETTINGS.items() if s.extra)
#: keys a settings mapping may hold (``extra`` may also be given as a nested mapping)
MAPPING_NAMES: tuple[str, ...] = tuple(n for n, s in SETTINGS.items() if not s.internal)


def unknown_key(key: Any, known: tuple[str, ...] = MAPPING_NAMES) -> InputError:
    shown = _short(key) if isinstance(key, str) else describe(key)
    return InputError(f"unknown setting {shown} (known: {', '.join(known)})")


def check_extra(extra: Any, label: str = "setting 'extra'", allow_internal: bool = True) -> dict[str, Any]:
    """A validated copy of an ``extra`` mapping (every key known, every value in range)."""
    if not isinstance(extra, Mapping):
        raise InputError(f"{label} must be an object of extra settings, not {describe(extra)}")
    out: dict[str, Any] = {}
    known = EXTRA_NAMES if allow_internal else tuple(n for n in EXTRA_NAMES if not SETTINGS[n].internal)
    for key, value in extra.items():
        if key not in known:
            raise unknown_key(key, known)
        out[key] = SETTINGS[key].check(value)
    return out


def split_mapping(values: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A settings mapping -> (validated ``InferenceSettings`` field values, validated ``extra``).

    ``values`` may hold fields and extra keys side by side (``{"threshold": 0.4, "selection":
    "network"}``) and/or an ``extra`` object (what ``dataclasses.asdict`` gives). ``None`` is
    the empty mapping. Anything else, an unknown key or a bad value is an ``InputError``.
    """
    if values is None:
        return {}, {}
    if not isinstance(values, Mapping):
        raise InputError(f"settings must be an object such as {{\"threshold\": 0.5}}, not {describe(values)}")
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in values.items():
        if key == "extra":
            extra.update(check_extra(value, allow_internal=False))
        elif key in FIELD_NAMES:
            fields[key] = SETTINGS[key].check(value)
        elif key in MAPPING_NAMES:
            extra[key] = SETTINGS[key].check(value)
        else:
            raise unknown_key(key, MAPPING_NAMES + ("extra",))
    return fields, extra


def cli_type(name: str) -> Callable[[str], Any]:
    """An argparse ``type=`` for setting ``name``: parses the text and checks it against the table.

    A bad value raises ``argparse.ArgumentTypeError``, which the CLI's parser turns into one line
    (``argument --threshold: must be a number above 0 and below 1, not -1``) and exit code 2.
    """
    import argparse

    spec = SETTINGS[name]

    def parse(text: str) -> Any:
        value: Any = text
        try:
            if spec.kind == "float":
                value = float(text)
            elif spec.kind == "int":
                value = int(text)
        except ValueError:
            pass  # reported as text below
        normal, problem = spec.problem(value)
        if problem is not None:  # shown as typed: "not -1", not "not -1.0"
            shown = f"{_short(text)} (an unknown device)" if spec.kind == "device" else _short(text)
            raise argparse.ArgumentTypeError(f"must be {spec.expect(cli=True)}, not {shown}")
        return normal

    parse.__name__ = spec.kind
    return parse


__all__ = ["DEVICE_TEXT", "EXTRA_NAMES", "FIELD_NAMES", "MAPPING_NAMES", "SETTINGS", "Setting", "check_extra",
           "cli_type", "describe", "split_mapping"]
