"""Validation: read a data set file row by row, keep every well-formed row, report every other line with a code.

Files are JSON Lines or one JSON array (`reading.read_rows`). With `fmt="auto"` each row's format is detected
on its own, so a file that mixes formats loses none of its rows. A `mapping` renames fields before that
(`{"response": "output"}` reads an Alpaca-like file whose answers are under "response").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.curation.reading import MAX_ROW_BYTES, read_rows
from course_lib.curation.records import CurationError, Problem, Record
from course_lib.formats import FORMATS, FormatError, detect_format, to_messages

EXPECTED = ("'messages' (messages format), 'conversations' (ShareGPT) or 'instruction' and 'output' (Alpaca); "
            "rename other fields with --map, e.g. --map response=output")

ROLES = ("system", "user", "assistant")
CODES = {
    "invalid_json": "the line is not valid JSON (strict: no NaN, no Infinity)",
    "invalid_encoding": "the line is not valid UTF-8",
    "row_too_large": "the row is over the size limit (MAX_ROW_BYTES, --max-row-bytes) and was not read",
    "unknown_format": "the row has the fields of no known format",
    "map_conflict": "a field to rename is in the row together with the field it is renamed to",
    "not_object": "the line is JSON but not an object",
    "missing_messages": "the row has no conversation in the format it is read as",
    "missing_role": "a turn has no role",
    "unknown_role": "a turn's role is not system, user or assistant",
    "non_string_content": "a turn's content is not a string",
    "empty_content": "a turn's content is empty",
    "no_assistant_turn": "the conversation has no assistant turn to learn from",
    "last_turn_not_assistant": "the conversation does not end with the assistant's turn",
    "blank_line": "the line is empty",
    "too_long": "the conversation is over the token limit, counted with the chat template",
}


def fields_of(row: dict, limit: int = 12) -> str:
    """The row's field names, for messages that say what was found."""
    names = [repr(k) for k in list(row)[:limit]]
    return ", ".join(names) + (", ..." if len(row) > limit else "") if names else "no fields"


def apply_mapping(row: dict, mapping: dict[str, str] | None) -> tuple[dict | None, str]:
    """The row with fields renamed by `mapping` (old -> new), or (None, why) when a new name is taken already."""
    if not mapping:
        return row, ""
    for old, new in mapping.items():
        if old in row and new in row:
            return None, f"the row has both {old!r} and {new!r}; --map {old}={new} would overwrite {new!r}"
    return {mapping.get(k, k): v for k, v in row.items()}, ""


def check_row(row: object, fmt: str = "auto",
              mapping: dict[str, str] | None = None) -> tuple[dict | None, str | None, str]:
    """(the row in messages format, None, "") when usable, else (None, code, detail)."""
    if not isinstance(row, dict):
        return None, "not_object", f"got {type(row).__name__}"
    row, why = apply_mapping(row, mapping)
    if row is None:
        return None, "map_conflict", why
    if fmt == "auto" and detect_format(row) is None:
        return None, "unknown_format", f"the row has {fields_of(row)}; expected {EXPECTED}"
    try:
        row = to_messages(row, fmt)
    except FormatError as error:
        return None, "missing_messages", f"{error} (read as {fmt}; the row has {fields_of(row)})"
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return None, "missing_messages", "'messages' must be a non-empty list of turns"
    for i, turn in enumerate(messages):
        if not isinstance(turn, dict) or "role" not in turn:
            return None, "missing_role", f"turn {i} has no 'role'"
        if turn["role"] not in ROLES:
            return None, "unknown_role", f"turn {i} has role {turn['role']!r}"
        content = turn.get("content")
        if not isinstance(content, str):
            return None, "non_string_content", f"turn {i} ({turn['role']}) has content of type {type(content).__name__}"
        if not content.strip():
            return None, "empty_content", f"turn {i} ({turn['role']}) is empty"
    if not any(turn["role"] == "assistant" for turn in messages):
        return None, "no_assistant_turn", "no turn has role 'assistant'"
    if messages[-1]["role"] != "assistant":
        return None, "last_turn_not_assistant", f"the last turn has role {messages[-1]['role']!r}"
    return row, None, ""


def count_tokens(records: list[Record], tokenizer) -> list[int]:
    """Tokens of each conversation as the model sees it in training: rendered with the tokenizer's chat template."""
    texts = [tokenizer.apply_chat_template(r.messages, tokenize=False) for r in records]
    return [len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]]


@dataclass
class ValidationResult:
    records: list[Record]  # the usable rows, in file order
    problems: list[Problem]  # one per unusable line, in file order
    lines: int  # rows read: lines of a JSON Lines file (blank ones too), elements of a JSON array

    def summary(self) -> dict[str, int]:
        """How many lines each code removed."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.code] = counts.get(problem.code, 0) + 1
        return counts


def validate_file(path: str | Path, *, fmt: str = "auto", tokenizer=None, max_tokens: int | None = None,
                  mapping: dict[str, str] | None = None, max_row_bytes: int = MAX_ROW_BYTES,
                  progress: bool = False) -> ValidationResult:
    """Read a JSON Lines or JSON array file row by row; a bad row is reported with its line and code and never
    stops the read.

    With a tokenizer and `max_tokens`, conversations longer than that (chat template included) are reported as
    "too_long". A missing or empty file, or one in which no row has a known format, raises CurationError.
    """
    path = Path(path)
    if not path.is_file():
        raise CurationError(f"{path} does not exist or is not a file. Check the path.")
    if path.stat().st_size == 0:
        raise CurationError(f"{path} is empty: a data set needs one JSON object per line.")
    if fmt != "auto" and fmt not in FORMATS:
        raise CurationError(f"unknown format {fmt!r}; use one of: auto, {', '.join(FORMATS)}")
    records, problems, read = [], [], 0
    for raw in tqdm(read_rows(path, max_row_bytes=max_row_bytes), desc=f"validating {path.name}", unit=" rows",
                    disable=not progress):
        read += 1
        if raw.code:
            problems.append(Problem(raw.line, raw.code, raw.detail, raw.text if raw.code != "blank_line" else ""))
            continue
        row, code, detail = check_row(raw.value, fmt, mapping)
        if code:
            problems.append(Problem(raw.line, code, detail, raw.text))
        else:
            records.append(Record(raw.line, row))
    if not records and all(p.code == "blank_line" for p in problems):
        raise CurationError(f"{path} is empty: a data set needs one JSON object per line.")
    if not records and problems and all(p.code in ("unknown_format", "missing_messages", "blank_line")
                                        for p in problems):
        first = next(p for p in problems if p.code != "blank_line")
        raise CurationError(f"{path}: no row can be read as {'any known format' if fmt == 'auto' else fmt}. "
                            f"Line {first.line}: {first.detail}.")
    if tokenizer is not None and max_tokens is not None and records:
        lengths = count_tokens(records, tokenizer)
        kept = []
        for record, n in zip(records, lengths, strict=True):
            record.flags["tokens"] = n
            if n > max_tokens:
                problems.append(Problem(record.line, "too_long", f"{n} tokens, over the limit of {max_tokens}",
                                        json.dumps(record.row, ensure_ascii=False)))
            else:
                kept.append(record)
        records = kept
        problems.sort(key=lambda p: p.line)
    return ValidationResult(records, problems, read)
