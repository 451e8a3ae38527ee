"""The curation pipeline: every step in order, with a record of each row removed and why.

    validate -> off-task -> invalid answers -> language -> length -> overlap with test files
             -> redact personal data -> exact and near duplicates, label conflicts

Task-specific judgement (what a valid answer is, what the label is) comes from a TaskRules; GENERIC uses
none, so the pipeline also runs on any public instruction data set. Of each duplicate cluster the earliest row
is kept (dedup.KEEP_RULE). Label conflicts need a label: the tickets task has one; for other data,
`drop_conflicts=True` treats the answer text as the label. Every value redaction replaces is recorded
(`CurationResult.changes`), and `redact=False` leaves every row as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.curation import card as cards
from course_lib.curation.dedup import check_threshold, deduplicate, normalise
from course_lib.curation.filters import language_filter, length_filter, predicate_filter
from course_lib.curation.output import check_outputs, write_atomic, write_jsonl_atomic
from course_lib.curation.pii import redact_with_changes
from course_lib.curation.reading import MAX_ROW_BYTES
from course_lib.curation.records import CurationError, Problem, Record
from course_lib.curation.split import contamination
from course_lib.curation.validate import validate_file
from course_lib.tickets import LANGUAGES, parse_answer

# The shipped curated training set (data/tickets/train_curated.jsonl): this many curated rows, sampled evenly by
# category with this seed. Lesson 02 draws it again and checks it is the shipped file.
CURATED_SIZE, CURATED_SEED = 1000, 7101


@dataclass(frozen=True)
class TaskRules:
    """What curation needs to know about a task; any field may be None."""

    name: str
    on_task: Callable[[Record], str | None] | None = None  # reason a row is not this task at all
    answer_check: Callable[[Record], str | None] | None = None  # reason an answer is unusable (e.g. cut off)
    label_of: Callable[[Record], object] | None = None  # the label, for label conflicts
    languages: frozenset[str] | None = None  # languages to keep


def _ticket_rules() -> TaskRules:
    def on_task(record: Record) -> str | None:
        return (None if record.answer.lstrip().startswith("{")
                else "the answer is not a JSON object: not the ticket task")

    def answer_check(record: Record) -> str | None:
        _, problems = parse_answer(record.answer)
        return "invalid ticket answer: " + "; ".join(problems) if problems else None

    def label_of(record: Record) -> object:
        data, _ = parse_answer(record.answer)
        return tuple((k, v) for k, v in (data or {}).items() if k != "summary")

    return TaskRules("tickets", on_task, answer_check, label_of, frozenset(LANGUAGES))


GENERIC = TaskRules("generic")


def task_rules(name: str) -> TaskRules:
    """The rules for a task by name: "tickets" (the course's task) or "generic"."""
    if name == "tickets":
        return _ticket_rules()
    if name == "generic":
        return GENERIC
    raise ValueError(f"unknown task {name!r}; use 'tickets' or 'generic'")


@dataclass
class CurationResult:
    source: str  # the file curated
    lines: int  # lines read
    kept: list[Record]  # the curated rows, personal data redacted
    problems: list[Problem]  # lines that were not usable rows
    removed: dict[str, list[tuple[Record, str]]]  # kind -> (row, reason)
    redacted: dict[str, int]  # kind of personal data -> values replaced
    settings: dict = field(default_factory=dict)

    def found(self) -> dict[str, set[int]]:
        """Lines flagged by each check: removal kinds, "malformed" for unusable lines, "pii" for redacted rows."""
        out = {kind: {r.line for r, _ in rows} for kind, rows in self.removed.items()}
        out["malformed"] = {p.line for p in self.problems if p.code not in ("too_long", "blank_line")}
        out["too_long"] = out.get("too_long", set()) | {p.line for p in self.problems if p.code == "too_long"}
        out["pii"] = {r.line for r in self.all_records() if r.flags.get("pii")}
        return out

    def changes(self) -> list[dict]:
        """One entry per value redaction replaced in a kept row: line, field, role, kind, start, end."""
        return [{"line": r.line, **change}
                for r in sorted(self.kept, key=lambda r: r.line) for change in r.flags.get("changes", [])]

    def all_records(self) -> list[Record]:
        return self.kept + [r for rows in self.removed.values() for r, _ in rows]

    def removed_counts(self) -> dict[str, int]:
        found = self.found()
        counts = {kind: len(rows) for kind, rows in self.removed.items()}
        counts.update({"malformed": len(found["malformed"]), "too_long": len(found["too_long"])})
        return counts

    def card(self, name: str, label_of: Callable[[Record], str] | None = None) -> dict:
        """The dataset card as a dict (see card.card_markdown for the rendered form)."""
        tokens = [r.flags["tokens"] for r in self.kept if "tokens" in r.flags]
        lengths, unit = ((tokens, "tokens") if len(tokens) == len(self.kept)
                         else ([len(r.prompt) + len(r.answer) for r in self.kept], "characters"))
        return {
            "name": name, "source": self.source, "lines": self.lines, "kept": len(self.kept),
            "removed": self.removed_counts(), "redacted": dict(sorted(self.redacted.items())),
            "languages": cards.count_values([r.flags.get("language", "unknown") for r in self.kept]),
            "labels": cards.count_values([label_of(r) for r in self.kept]) if label_of else {},
            "length_unit": unit, "length": cards.length_stats(lengths),
            "length_histogram": cards.histogram(lengths), "settings": self.settings,
        }


def answer_label(record: Record) -> str:
    """The answer text, normalised: the label for `drop_conflicts` on data without labels."""
    return normalise(record.answer)


def check_settings(*, max_chars: int | None, near_threshold: float, max_tokens: int | None, tokenizer,
                   max_row_bytes: int) -> None:
    """Refuse settings that would be ignored or mean nothing, before any work (a CurationError naming the option)."""
    try:
        check_threshold(near_threshold)
    except ValueError as error:
        raise CurationError(f"--near-threshold: {error}") from None
    if max_chars is not None and (not isinstance(max_chars, int) or max_chars < 1):
        raise CurationError("--max-chars must be a whole number of 1 or more (characters of the prompt), not "
                            f"{max_chars!r}")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise CurationError(f"--max-tokens must be a whole number of 1 or more, not {max_tokens!r}")
    if max_tokens is not None and tokenizer is None:
        raise CurationError("--max-tokens needs --tokenizer: tokens are counted with a tokenizer's chat template")
    if not isinstance(max_row_bytes, int) or max_row_bytes < 1:
        raise CurationError(f"--max-row-bytes must be a whole number of 1 or more, not {max_row_bytes!r}")


def curate(path: str | Path, *, fmt: str = "auto", rules: TaskRules = GENERIC, tokenizer=None,
           max_tokens: int | None = None, max_chars: int | None = None, near_threshold: float = 0.7,
           protect: list[str | Path] = (), redact: bool = True, drop_conflicts: bool = False,
           mapping: dict[str, str] | None = None, max_row_bytes: int = MAX_ROW_BYTES,
           progress: bool = False) -> CurationResult:
    """Curate one JSON Lines or JSON array file; `protect` lists test files that no kept row may near-duplicate."""
    check_settings(max_chars=max_chars, near_threshold=near_threshold, max_tokens=max_tokens, tokenizer=tokenizer,
                   max_row_bytes=max_row_bytes)
    validation = validate_file(path, fmt=fmt, tokenizer=tokenizer, max_tokens=max_tokens, mapping=mapping,
                               max_row_bytes=max_row_bytes, progress=progress)
    records = validation.records
    removed: dict[str, list[tuple[Record, str]]] = {}
    # 1) rows that are not the task, and answers that are unusable
    if rules.on_task:
        records, removed["off_task"] = predicate_filter(records, rules.on_task)
    if rules.answer_check:
        records, removed["invalid_answer"] = predicate_filter(records, rules.answer_check)
    # 2) language and length
    if rules.languages:
        records, removed["language"] = language_filter(records, set(rules.languages))
    if max_chars:
        records, removed["too_long"] = length_filter(records, max_chars=max_chars)
    # 3) rows that copy a protected test set: training on them would inflate every later score
    if protect:
        test_texts = [r.text("user") for p in protect for r in validate_file(p).records]
        hits = contamination([r.text("user") for r in records], test_texts, threshold=near_threshold)
        leaked = {i for i, _, _ in hits}
        removed["test_overlap"] = [(records[i], "near-duplicates a row of a protected test file")
                                   for i in sorted(leaked)]
        records = [r for i, r in enumerate(records) if i not in leaked]
    # 4) personal data is replaced, not removed
    totals: dict[str, int] = {}
    if redact:
        for record in records:
            messages, changes = redact_with_changes(record.messages)
            if changes:
                record.row = {**record.row, "messages": messages}
                counts: dict[str, int] = {}
                for change in changes:
                    counts[change["kind"]] = counts.get(change["kind"], 0) + 1
                record.flags["pii"] = counts
                record.flags["changes"] = changes
                for kind, n in counts.items():
                    totals[kind] = totals.get(kind, 0) + n
    # 5) duplicates last, so that they are judged on clean, redacted text; the earliest row of a cluster stays
    label_of = rules.label_of or (answer_label if drop_conflicts else None)
    records, dupes = deduplicate(records, threshold=near_threshold, label_of=label_of, progress=progress)
    removed.update(dupes)
    settings = {"format": fmt, "task": rules.name, "max_tokens": max_tokens, "max_chars": max_chars,
                "near_threshold": near_threshold, "protect": [cards.display_path(str(p)) for p in protect],
                "redact": redact, "drop_conflicts": label_of is not None, "map": mapping or {}}
    return CurationResult(str(path), validation.lines, records, validation.problems, removed, totals, settings)


def write_curated(result: CurationResult, out: str | Path, name: str | None = None,
                  label_of: Callable[[Record], str] | None = None) -> dict[str, Path]:
    """Write the kept rows to `out`, every removed row with its reason to `<out>.removed.jsonl`, every value
    redaction replaced to `<out>.changes.jsonl`, and the card; each file atomically (see `output`)."""
    out = Path(out)
    paths = check_outputs(out, [result.source])
    entries = [{"line": p.line, "kind": "malformed" if p.code != "too_long" else "too_long",
                "reason": f"{p.code}: {p.detail}", "text": p.text} for p in result.problems]
    entries += [{"line": r.line, "kind": kind, "reason": reason, "row": r.row}
                for kind, rows in result.removed.items() for r, reason in rows]
    write_jsonl_atomic(paths["data"], (record.row for record in result.kept))
    write_jsonl_atomic(paths["removed"], sorted(entries, key=lambda e: e["line"]))
    write_jsonl_atomic(paths["changes"], result.changes())
    write_atomic(paths["card"], [cards.card_markdown(result.card(name or out.stem, label_of))])
    return paths
