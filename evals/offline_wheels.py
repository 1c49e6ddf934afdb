"""Download the wheels a machine without network lacks to run Foveate, for ``evals/gpu_study.sh --wheels``.

    python -m foveate.evals.offline_wheels HAVE.txt DEST [--python-version 3.12] [--platform TAG ...]

HAVE.txt lists what the other machine has, one distribution a line (``pip freeze`` or ``pip list
--format=freeze`` there; bare names do too). Foveate's dependencies are followed from this environment's
installed metadata (the versions its tests ran with), markers evaluated for the other machine's Python;
those HAVE.txt lacks are downloaded as binary wheels of the versions installed here, without their own
dependencies (they are in the list already). Prints one JSON object: the wheels, their size, what was
skipped as present.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(root: str, python_version: str, have: set[str] | frozenset[str] = frozenset()) -> dict[str, str]:
    """{canonical name: version installed here} of ``root`` and every dependency it needs on ``python_version``;
    the dependencies of what ``have`` names are not followed (the other machine's versions may need others)."""
    environment = {"python_version": python_version, "python_full_version": f"{python_version}.0", "extra": ""}
    found, todo = {}, [root]
    while todo:
        name = canonical(todo.pop())
        if name in found:
            continue
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(
                f"error: {name} is not installed here, so its version and dependencies are unknown"
            ) from None
        found[name] = dist.version
        for line in [] if name in have and name != canonical(root) else dist.requires or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate(environment):
                todo.append(requirement.name)
    return found


def present(path: Path) -> set[str]:
    """Canonical names of the distributions a ``pip freeze`` / ``pip list --format=freeze`` / name list holds."""
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.add(canonical(re.split(r"[=<>~!@ ;\[]", line, maxsplit=1)[0]))
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("have", type=Path, help="what the other machine has: pip freeze there, or one name a line")
    parser.add_argument("dest", type=Path, help="folder for the wheels")
    parser.add_argument("--python-version", default="3.12", help="the other machine's Python (default: 3.12)")
    parser.add_argument(
        "--platform", action="append", help=f"wheel platform tags to accept (default: {', '.join(PLATFORMS)})"
    )
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="NAME",
        help="leave this distribution out (e.g. openai, which only the openai: controller backend imports)",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be downloaded, download nothing")
    args = parser.parse_args(argv)
    if not args.have.is_file():
        parser.error(f"{args.have}: no such file")
    have = present(args.have)
    left_out = {canonical(n) for n in args.exclude}
    needed = closure("foveate", args.python_version, have | left_out)
    needed.pop("foveate")  # the checkout itself: gpu_study.sh installs it
    missing = {name: v for name, v in sorted(needed.items()) if name not in have | left_out}
    if missing and not args.dry_run:
        args.dest.mkdir(parents=True, exist_ok=True)
        platforms = [flag for tag in (args.platform or PLATFORMS) for flag in ("--platform", tag)]
        cmd = [
            sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
            "--python-version", args.python_version, "--implementation", "cp", *platforms,
            "--dest", str(args.dest), *(f"{name}=={v}" for name, v in missing.items()),
        ]  # fmt: skip
        if subprocess.run(cmd).returncode:
            raise SystemExit("error: pip download failed (above); --platform may need another manylinux tag")
    wheels = sorted(args.dest.glob("*.whl")) if args.dest.is_dir() else []
    print(
        json.dumps(
            {
                "missing": missing,
                "present": sorted(set(needed) & have),
                "excluded": sorted(set(needed) & left_out),
                "wheels": [w.name for w in wheels],
                "megabytes": round(sum(w.stat().st_size for w in wheels) / 1e6, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
