"""Writing curation's outputs safely: paths checked before any work, files replaced atomically, strict JSON.

`clean IN OUT` writes four files: OUT (the kept rows), `OUT.removed.jsonl` (every removed row and why),
`OUT.changes.jsonl` (every value redaction replaced: line, field, kind) and `OUT.card.md` (the dataset card).
`check_outputs` refuses, before anything is read, an output that is one of the inputs (compared as resolved
paths), a folder, or a path under a file; missing folders are created when writing. Each file is written to a temporary
file beside it and renamed over the old one, so a crash leaves the old file as it was.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from course_lib.curation.records import CurationError

SIDECARS = {"removed": ".removed.jsonl", "changes": ".changes.jsonl", "card": ".card.md"}


def output_paths(out: str | Path) -> dict[str, Path]:
    """The four files `clean` writes for OUT: data, removed, changes and card."""
    out = Path(out)
    return {"data": out, **{name: out.with_suffix(suffix) for name, suffix in SIDECARS.items()}}


def check_outputs(out: str | Path, inputs: Iterable[str | Path]) -> dict[str, Path]:
    """The output paths, or a CurationError naming the path and the fix when one cannot or must not be written."""
    if Path(out).is_dir() or not Path(out).name:
        raise CurationError(f"the output {out} is a folder; give a file name, e.g. {Path(out) / 'clean.jsonl'}")
    paths = output_paths(out)
    sources = {Path(p).resolve(): Path(p) for p in inputs}
    for path in paths.values():
        resolved = path.resolve()
        if resolved in sources:
            raise CurationError(f"the output {path} is the input {sources[resolved]}: curation would overwrite the "
                                "data it reads. Write to another file, e.g. data.clean.jsonl.")
        if path.is_dir():
            raise CurationError(f"the output {path} is a folder; give a file name, e.g. {path / 'clean.jsonl'}")
        parent = resolved.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise CurationError(f"cannot write {path}: {parent} is a file, not a folder. Choose another output path.")
        if not os.access(parent, os.W_OK):
            raise CurationError(f"cannot write {path}: the folder {parent} is not writable.")
    return paths


def dumps(row: object) -> str:
    """One JSON line: UTF-8 text as is, strict JSON (a NaN raises instead of writing the non-JSON `NaN`)."""
    return json.dumps(row, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def write_atomic(path: Path, text_parts: Iterable[str]) -> None:
    """Write the parts to a temporary file beside `path`, then rename it over `path` (the old file survives a crash)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for part in text_parts:
                f.write(part)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_jsonl_atomic(path: Path, rows: Iterable[object]) -> None:
    """`rows` as JSON Lines, written atomically."""
    write_atomic(path, (dumps(row) + "\n" for row in rows))
