"""Validation: stream a JSONL file, keep every well-formed row, report every other line with a code."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from course_lib.curation.records import CurationError, Problem, Record
from course_lib.formats import FormatError, detect_format, to_messages

ROLES = ("system", "user", "assistant")
CODES = {
    "invalid_json": "the line is not valid JSON",
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


def check_row(row: object, fmt: str = "auto") -> tuple[dict | None, str | None, str]:
    """(the row in messages format, None, "") when usable, else (None, code, detail)."""
    if not isinstance(row, dict):
        return None, "not_object", f"got {type(row).__name__}"
    try:
        row = to_messages(row, fmt)
    except FormatError as error:
        return None, "missing_messages", str(error)
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
    lines: int  # lines read

    def summary(self) -> dict[str, int]:
        """How many lines each code removed."""
        counts: dict[str, int] = {}
        for problem in self.problems:
            counts[problem.code] = counts.get(problem.code, 0) + 1
        return counts


def validate_file(path: str | Path, *, fmt: str = "auto", tokenizer=None, max_tokens: int | None = None,
                  progress: bool = False) -> ValidationResult:
    """Read a JSONL file line by line; a bad line is reported with its number and code and never stops the read.

    With a tokenizer and `max_tokens`, conversations longer than that (chat template included) are reported as
    "too_long". A missing or empty file raises CurationError.
    """
    path = Path(path)
    if not path.is_file():
        raise CurationError(f"{path} does not exist or is not a file. Check the path.")
    if path.stat().st_size == 0:
        raise CurationError(f"{path} is empty: a data set needs one JSON object per line.")
    if fmt == "auto":
        fmt = detect_file_format(path)
    records, problems, lineno = [], [], 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for lineno, line in enumerate(tqdm(f, desc=f"validating {path.name}", unit=" rows", disable=not progress), 1):
            if not line.strip():
                problems.append(Problem(lineno, "blank_line", CODES["blank_line"]))
                continue
            line = line.rstrip("\r\n")
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(Problem(lineno, "invalid_json", f"{error.msg} (column {error.colno})", line))
                continue
            row, code, detail = check_row(raw, fmt)
            if code:
                problems.append(Problem(lineno, code, detail, line))
            else:
                records.append(Record(lineno, row))
    if not records and all(p.code == "blank_line" for p in problems):
        raise CurationError(f"{path} is empty: a data set needs one JSON object per line.")
    if tokenizer is not None and max_tokens is not None and records:
        lengths = count_tokens(records, tokenizer)
        kept = []
        for record, n in zip(records, lengths):
            record.flags["tokens"] = n
            if n > max_tokens:
                problems.append(Problem(record.line, "too_long", f"{n} tokens, over the limit of {max_tokens}",
                                        json.dumps(record.row, ensure_ascii=False)))
            else:
                kept.append(record)
        records = kept
        problems.sort(key=lambda p: p.line)
    return ValidationResult(records, problems, lineno)


def detect_file_format(path: str | Path, sample: int = 20) -> str:
    """The format most of the first `sample` parseable rows of a file have."""
    votes: dict[str, int] = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            try:
                fmt = detect_format(json.loads(line))
            except json.JSONDecodeError:
                continue
            if fmt:
                votes[fmt] = votes.get(fmt, 0) + 1
            if sum(votes.values()) >= sample:
                break
    if not votes:
        raise CurationError(f"{path}: no row has the fields of a known format (messages, alpaca, sharegpt).")
    return max(votes, key=votes.get)
