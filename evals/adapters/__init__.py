"""Adapters from public benchmark annotation files to the Foveate manifest.

Each adapter module has ``convert(annotation_path, video_root)``, which yields a ManifestRow per
question and a Skip per record it cannot convert, and names in its docstring the public file
format it reads, where that format is defined, and the released video layout its paths assume.
``convert`` below runs one and collects the rows and the skips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from foveate.agent.records import ManifestRow
from foveate.evals.adapters import egoschema, longvideobench, lvbench, mlvu, nextqa, videomme
from foveate.evals.adapters.common import AnnotationError, RecordError, Skip

ADAPTERS: dict[str, Callable[[str | Path, str | Path], Iterable[ManifestRow | Skip]]] = {
    "videomme": videomme.convert,
    "longvideobench": longvideobench.convert,
    "mlvu": mlvu.convert,
    "nextqa": nextqa.convert,
    "egoschema": egoschema.convert,
    "lvbench": lvbench.convert,
}


class Conversion(BaseModel):
    """What one annotation file gave: the manifest rows, and the records left out."""

    model_config = ConfigDict(frozen=True)

    rows: list[ManifestRow] = Field(description="One row per converted question, in file order.")
    skipped: list[Skip] = Field(default_factory=list, description="Records left out, each with its reason.")


def convert(bench: str, annotation_path: str | Path, video_root: str | Path) -> Conversion:
    """Run the adapter named ``bench``.

    Raises AnnotationError when the file cannot be read, has the wrong structure or yields no
    question at all, and ValueError for unknown names. Bad records are skipped and listed.
    """
    if bench not in ADAPTERS:
        raise ValueError(f"unknown benchmark {bench!r}; valid: {', '.join(ADAPTERS)}")
    rows: list[ManifestRow] = []
    skipped: list[Skip] = []
    seen: set[str] = set()
    for item in ADAPTERS[bench](annotation_path, video_root):
        if isinstance(item, Skip):
            skipped.append(item)
        elif item.id in seen:
            skipped.append(Skip(file=str(annotation_path), record=f"question {item.id!r}", reason="duplicate id"))
        else:
            seen.add(item.id)
            rows.append(item)
    if not rows:
        raise AnnotationError(annotation_path, _nothing_converted(str(annotation_path), skipped))
    return Conversion(rows=rows, skipped=skipped)


def _nothing_converted(path: str, skipped: list[Skip]) -> str:
    if not skipped:
        return "no question in this file"
    first = skipped[0]
    place = first.record if first.file == path else f"{first.file}: {first.record}"
    return f"none of its {len(skipped)} record(s) could be converted (first: {place}: {first.reason})"


__all__ = ["ADAPTERS", "AnnotationError", "Conversion", "RecordError", "Skip", "convert"]
