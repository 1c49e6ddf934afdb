"""Adapters from public benchmark annotation files to the Foveate manifest.

Each adapter module has ``convert(annotation_path, video_root) -> list[ManifestRow]`` and names
in its docstring the public file format it reads and where that format is defined.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from foveate.agent.records import ManifestRow
from foveate.evals.adapters import egoschema, longvideobench, lvbench, mlvu, nextqa, videomme
from foveate.evals.adapters.common import AnnotationError

ADAPTERS: dict[str, Callable[[str | Path, str | Path], list[ManifestRow]]] = {
    "videomme": videomme.convert,
    "longvideobench": longvideobench.convert,
    "mlvu": mlvu.convert,
    "nextqa": nextqa.convert,
    "egoschema": egoschema.convert,
    "lvbench": lvbench.convert,
}


def convert(bench: str, annotation_path: str | Path, video_root: str | Path) -> list[ManifestRow]:
    """Run the adapter named ``bench``; raises AnnotationError for bad files, ValueError for unknown names."""
    if bench not in ADAPTERS:
        raise ValueError(f"unknown benchmark {bench!r}; valid: {', '.join(ADAPTERS)}")
    try:
        rows = ADAPTERS[bench](annotation_path, video_root)
    except ValidationError as exc:  # a field of the right name but the wrong kind
        raise AnnotationError(
            annotation_path, f"a record does not fit the manifest: {str(exc).splitlines()[0]}"
        ) from None
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnnotationError(
            annotation_path, f"unexpected structure for {bench} ({exc.__class__.__name__}: {exc})"
        ) from None
    seen: set[str] = set()
    for r in rows:
        if r.id in seen:
            raise AnnotationError(annotation_path, f"duplicate question id {r.id!r}")
        seen.add(r.id)
    return rows


__all__ = ["ADAPTERS", "AnnotationError", "convert"]
