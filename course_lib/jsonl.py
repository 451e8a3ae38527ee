"""Reading JSON Lines files row by row, with errors that name the file and line, and writing them. Lesson 02.

Every loader of the course's data files (`tickets.load_tickets`, `dpo.load_preferences`,
`judging.load_judgements`) reads through `read_jsonl` and adds its own checks of each row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

REGENERATE = "Regenerate the data files with `python -m course_lib.datafiles`."


def read_jsonl(path: Path | str, error: type[Exception] = ValueError) -> Iterator[tuple[str, object]]:
    """Yield `(where, row)` per line, `where` being e.g. "data/x.jsonl, line 3"; a missing file or a line that is
    not JSON raises `error` naming the file, the line and the fix."""
    path = Path(path)
    if not path.exists():
        raise error(f"{path} does not exist. {REGENERATE}")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            where = f"{path}, line {lineno}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise error(f"{where}: not valid JSON ({err.msg}, column {err.colno}). "
                            "Fix or remove the line.") from None
            yield where, row


def write_jsonl(rows: list, path: Path) -> None:
    """Rows as UTF-8 JSON Lines, one compact object per line (strings are written as they are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False, separators=(",", ":")))
                    + "\n")

