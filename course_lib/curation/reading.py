"""Reading a data set file as it is released: JSON Lines or one JSON array, row by row, changing nothing.

- A UTF-8 byte-order mark at the start is skipped (row 1 is read like any other).
- A line that is not valid UTF-8 is reported with its line and the byte that fails ("invalid_encoding"); it is
  never decoded with replacement characters and kept.
- Only strict JSON is read: `NaN`, `Infinity`, numbers too large for a float, half a surrogate pair (`\\ud800`)
  and nesting deeper than Python can parse are reported per row.
- A row over `max_row_bytes` (MAX_ROW_BYTES by default) is reported as "row_too_large" without parsing it,
  so one huge row costs no time.
- A file that starts with "[" and parses as one array is read element by element; each element's line is
  the line it starts on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from course_lib.curation.records import CurationError

MAX_ROW_BYTES = 1_000_000  # a row longer than this (in UTF-8 bytes) is refused: no instruction row needs a megabyte
BOM = b"\xef\xbb\xbf"
SPACE = re.compile(r"[ \t\r\n]*")


def _no_constants(name: str):
    raise ValueError(f"{name} is not valid JSON (JSON has no NaN or Infinity); write null or a number")


def _finite(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is too large for a JSON number that tools can read back; write it as a string")
    return value


STRICT = json.JSONDecoder(parse_constant=_no_constants, parse_float=_finite)
HALF_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]", re.ASCII)  # the escape of a UTF-16 surrogate: a pair, or half of one


def _unpaired_surrogate(value: object) -> bool:
    """Whether a string inside `value` holds half a surrogate pair (it cannot be written as UTF-8)."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


@dataclass(frozen=True)
class RawRow:
    """One row as read: its line, the text as found (for the removed-rows file), and the value or the problem."""

    line: int
    text: str
    value: object = None
    code: str | None = None  # None when `value` was read
    detail: str = ""


def parse(text: str) -> tuple[object, str | None, str]:
    """(value, None, "") for strict JSON, else (None, "invalid_json", what is wrong and where)."""
    try:
        value = STRICT.decode(text)
        if HALF_SURROGATE.search(text) and _unpaired_surrogate(value):
            return (None, "invalid_encoding",
                    "a \\uD800-\\uDFFF escape without its pair is no character; fix or remove it")
        return value, None, ""
    except json.JSONDecodeError as error:
        return None, "invalid_json", f"{error.msg} (column {error.colno})"
    except ValueError as error:
        return None, "invalid_json", str(error)
    except RecursionError:
        return None, "invalid_json", "nested too deeply to read; a data row is a flat object of text fields"


def read_rows(path: str | Path, *, max_row_bytes: int = MAX_ROW_BYTES) -> Iterator[RawRow]:
    """Every row of a JSON Lines file or a JSON array file, in order, read or reported (see the module docstring)."""
    path = Path(path)
    with open(path, "rb") as f:
        head = f.read(len(BOM))
        if head != BOM:
            f.seek(0)
        first = f.read(4096).lstrip()
        f.seek(len(BOM) if head == BOM else 0)
        if first.startswith(b"["):
            data = f.read()
            rows = _array_rows(path, data, max_row_bytes)
            if rows is not None:
                yield from rows
                return
            f.seek(len(BOM) if head == BOM else 0)
        for lineno, raw in enumerate(f, 1):
            yield _line_row(lineno, raw, max_row_bytes)


def _line_row(lineno: int, raw: bytes, max_row_bytes: int) -> RawRow:
    raw = raw.rstrip(b"\r\n")
    if len(raw) > max_row_bytes:
        return RawRow(lineno, raw.decode("utf-8", "backslashreplace"), code="row_too_large",
                      detail=f"{len(raw):,} bytes, over the limit of {max_row_bytes:,} (--max-row-bytes)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return RawRow(lineno, raw.decode("utf-8", "backslashreplace"), code="invalid_encoding",
                      detail=f"byte {error.start + 1} ({raw[error.start:error.start + 1]!r}) is not UTF-8; "
                             "re-save the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8`)")
    if not text.strip():
        return RawRow(lineno, text, code="blank_line", detail="the line is empty")
    value, code, detail = parse(text)
    return RawRow(lineno, text, value, code, detail)


def _array_rows(path: Path, data: bytes, max_row_bytes: int) -> list[RawRow] | None:
    """The elements of a JSON array file as rows; None when the file is JSON Lines whose first row is an array."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise CurationError(f"{path}, line {line}: byte {error.start + 1} is not UTF-8. A JSON array file must be "
                            "UTF-8 throughout; re-save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8`).") from None
    try:
        whole = STRICT.decode(text)
    except (ValueError, RecursionError) as error:
        first_line = text.split("\n", 1)[0]
        if parse(first_line)[1] is None:
            return None  # the first line is a complete JSON value: JSON Lines
        where = (f"line {error.lineno}, column {error.colno}: {error.msg}"
                 if isinstance(error, json.JSONDecodeError) else str(error))
        raise CurationError(f"{path} starts like a JSON array but is not valid JSON ({where}). Fix the file, or write "
                            "it as JSON Lines (one JSON object per line).") from None
    if not isinstance(whole, list):
        return None
    rows, pos, line, counted = [], text.index("[") + 1, 1, 0
    for _ in whole:
        start = SPACE.match(text, pos).end()
        line, counted = line + text.count("\n", counted, start), start
        value, end = STRICT.raw_decode(text, start)
        size = len(text[start:end].encode("utf-8"))
        if size > max_row_bytes:
            rows.append(RawRow(line, text[start:end], code="row_too_large",
                               detail=f"{size:,} bytes, over the limit of {max_row_bytes:,} (--max-row-bytes)"))
        else:
            rows.append(RawRow(line, text[start:end], value))
        pos = SPACE.match(text, end).end()
        if text.startswith(",", pos):
            pos += 1
    return rows
