"""Helpers shared by the benchmark adapters: reading annotation files, letters, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from foveate.memory.errors import FoveateError

LETTERS = "ABCDEFGHIJ"
_PREFIX = re.compile(r"^\s*\(?([A-J])[.)]\s+")


class AnnotationError(FoveateError):
    """An annotation file that cannot be read or does not have the benchmark's format."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path, self.reason = str(path), reason
        super().__init__(f"{path}: {reason}")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AnnotationError(path, f"cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise AnnotationError(path, f"not valid JSON (line {exc.lineno}: {exc.msg})") from None


def read_jsonl(path: Path) -> list[dict]:
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise AnnotationError(path, f"cannot read ({exc.strerror or exc})") from None
    for i, line in enumerate(lines, start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise AnnotationError(path, f"line {i} is not valid JSON ({exc.msg})") from None
    return out


def read_records(path: Path) -> list[dict]:
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


def field(rec: dict, key: str, path: Path, index: int) -> Any:
    """``rec[key]``, or an AnnotationError naming the record and the missing field."""
    if not isinstance(rec, dict) or key not in rec:
        raise AnnotationError(path, f"record {index} has no {key!r} field (is this the right benchmark's file?)")
    return rec[key]


def strip_letter(option: str) -> str:
    """'A. Black shirts.' -> 'Black shirts.'; '(B) a dog' -> 'a dog'."""
    return _PREFIX.sub("", str(option), count=1).strip()


def letter(index: int, n_options: int, path: Path, where: str) -> str:
    if not 0 <= int(index) < n_options:
        raise AnnotationError(path, f"{where}: answer index {index} is outside the {n_options} options")
    return LETTERS[int(index)]


def seconds(clock: str) -> float:
    """'01:02:03' / '02:03' / '123.5' -> seconds."""
    total = 0.0
    for part in str(clock).strip().split(":"):
        total = total * 60 + float(part)
    return total
