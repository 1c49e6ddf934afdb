"""Helpers shared by the benchmark adapters: reading annotation files, checked fields, skipping bad records.

A problem with the whole file (unreadable, not JSON, not a list) raises ``AnnotationError``. A
problem with one record raises ``RecordError`` (or one of the built-in errors a wrong field type
causes) inside ``guarded``, which turns it into a ``Skip``: the record is left out, the others
are converted, and ``convert`` reports every skip with its file, record and reason.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from foveate.agent.answer import LETTERS, clock_seconds
from foveate.agent.records import ManifestRow
from foveate.memory.errors import FoveateError

_PREFIX = re.compile(r"^\s*\(?([A-J])[.)]\s+")
_LETTER = re.compile(r"\(?([A-Za-z])[.)]?")

# What a record of the wrong shape or type raises; ValidationError is a ValueError.
RECORD_ERRORS = (ValueError, IndexError, KeyError, TypeError, AttributeError)


class AnnotationError(FoveateError):
    """An annotation file that cannot be read or does not have the benchmark's format."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


class RecordError(ValueError):
    """One record that cannot become a manifest row; ``str(err)`` is the reason it is skipped."""


class Skip(BaseModel):
    """A record left out of the manifest, and why."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    file: str = Field(description="Annotation file holding the record.")
    record: str = Field(description="Where the record is in that file: 'record 34 (uid 7)', 'line 12', ...")
    reason: str = Field(description="Why it was skipped.")

    def __str__(self) -> str:
        return f"{self.file}: {self.record}: {self.reason}"


def guarded(path: Path, where: str, build: Callable[[], ManifestRow]) -> ManifestRow | Skip:
    """``build()``, or a Skip naming ``path``, ``where`` and the reason when the record is bad."""
    try:
        return build()
    except RECORD_ERRORS as exc:
        return Skip(file=str(path), record=where, reason=_reason(exc))


def _reason(exc: Exception) -> str:
    if isinstance(exc, RecordError):
        return str(exc)
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        return f"does not fit the manifest ({loc + ': ' if loc else ''}{err['msg']})"
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} field"
    return f"unexpected structure ({exc.__class__.__name__}: {exc})"


def where(index: int, rec: Any, id_key: str, unit: str = "record") -> str:
    """'record 3 (q_uid abc)': the position, and the record's id when it has a readable one."""
    ident = rec.get(id_key) if isinstance(rec, dict) else None
    return f"{unit} {index}" + (f" ({id_key} {ident})" if isinstance(ident, str | int) else "")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None


def read_json_object(path: Path, expected: str) -> dict:
    """A JSON file holding one object (a lookup table); AnnotationError naming ``path`` otherwise."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise AnnotationError(path, f"expected an object {expected}, found {type(data).__name__}")
    return data


def read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise AnnotationError(path, f"cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    for i, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AnnotationError(path, f"line {i} is not valid JSON ({exc.msg})") from None
    return out


def read_records(path: Path) -> list:
    """Records from a .json list, a .jsonl file or a .parquet table."""
    if path.suffix == ".parquet":
        try:
            import pandas as pd

            return pd.read_parquet(path).to_dict(orient="records")
        except (OSError, ValueError, ImportError) as exc:
            raise AnnotationError(path, f"cannot read the parquet table ({str(exc).splitlines()[0]})") from None
    data = read_jsonl(path) if path.suffix == ".jsonl" else read_json(path)
    if not isinstance(data, list):
        raise AnnotationError(path, f"expected a list of records, found {type(data).__name__}")
    return data


def record(rec: Any) -> dict:
    if not isinstance(rec, dict):
        raise RecordError(f"is a {type(rec).__name__}, not an object with named fields")
    return rec


def field(rec: Any, key: str) -> Any:
    """``rec[key]``, or a RecordError naming the missing field."""
    if key not in record(rec):
        raise RecordError(f"no {key!r} field (is this the right benchmark's file?)")
    return rec[key]


def text(value: Any, what: str) -> str:
    """A non-empty string field."""
    if not isinstance(value, str):
        raise RecordError(f"{what} is a {type(value).__name__}, not a string")
    if not value.strip():
        raise RecordError(f"{what} is empty")
    return value.strip()


def options(value: Any, what: str = "options") -> list[str]:
    """A list of 1 to 10 option texts (numbers are written as text); parquet arrays are lists too."""
    if hasattr(value, "tolist") and not isinstance(value, str):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise RecordError(f"{what} is a {type(value).__name__}, not a list")
    if not value:
        raise RecordError(f"{what} is empty")
    if len(value) > len(LETTERS):
        raise RecordError(f"{len(value)} {what}; at most {len(LETTERS)} (A-{LETTERS[-1]}) are supported")
    bad = [o for o in value if isinstance(o, bool) or not isinstance(o, str | Real)]
    if bad:
        raise RecordError(f"{what} hold a {type(bad[0]).__name__} ({bad[0]!r}), not text")
    out = [str(o).strip() for o in value]
    if not any(out):
        raise RecordError(f"all {what} are empty")
    return out


def strip_letter(option: str) -> str:
    """'A. Black shirts.' -> 'Black shirts.'; '(B) a dog' -> 'a dog'."""
    return _PREFIX.sub("", str(option), count=1).strip()


def answer_letter(value: Any, n_options: int, what: str = "answer") -> str | None:
    """An answer given as a letter ('C', 'c', '(C)'); None when there is none; must name an option."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    m = _LETTER.fullmatch(value.strip()) if isinstance(value, str) else None
    if not m:
        raise RecordError(f"{what} {value!r} is not an option letter")
    return _within(m[1].upper(), n_options, what)


def index_letter(value: Any, n_options: int, what: str = "answer") -> str | None:
    """An answer given as a 0-based option index (2 -> 'C'); None when there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise RecordError(f"{what} {value!r} is not an option index (0, 1, ...)")
    if not 0 <= int(value) < n_options:
        raise RecordError(f"{what} index {value} is outside the {n_options} options")
    return LETTERS[int(value)]


def _within(letter: str, n_options: int, what: str) -> str:
    if letter not in LETTERS[:n_options]:
        raise RecordError(f"{what} {letter!r} is not one of the {n_options} options (A-{LETTERS[n_options - 1]})")
    return letter


def number(value: Any, what: str) -> float | None:
    """A finite, non-negative number (or numeric text); None when absent."""
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        out = float(value)
    except (TypeError, ValueError):
        raise RecordError(f"{what} {value!r} is not a number") from None
    if not math.isfinite(out) or out < 0:
        raise RecordError(f"{what} {value!r} is not a finite non-negative number")
    return out


seconds = clock_seconds  # '01:02:03' / '02:03' / '123.5' -> seconds; ValueError for anything else
