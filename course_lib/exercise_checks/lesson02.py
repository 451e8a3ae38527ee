"""Lesson 02's exercise checks: near duplicates and e-mail redaction, scored against the planted defects."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from course_lib.exercise_checks.report import call, fail, number, passed
from course_lib.paths import data_path


def pool_rows() -> dict[int, dict]:
    """The raw pool's rows that parse, by line number, with their user message as "text"."""
    import json

    rows = {}
    with open(data_path("tickets", "raw_pool.jsonl"), encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                rows[number] = {**row, "text": next(m["content"] for m in row["messages"] if m["role"] == "user")}
            except (ValueError, KeyError, TypeError, StopIteration):
                continue  # a malformed line: lesson 02's validator reports those
    return rows


def planted(kind: str) -> list[dict]:
    from course_lib.curation.score import load_defects

    return [d for d in load_defects(data_path("tickets", "raw_pool_defects.jsonl")) if d["kind"] == kind]


def duplicate_sample(n_pairs: int = 30, n_clean: int = 60):
    """Texts holding `n_pairs` planted near-duplicate pairs and `n_clean` rows with no planted defect."""
    from course_lib.curation.score import load_defects

    rows = pool_rows()
    defective = {d["line"] for d in load_defects(data_path("tickets", "raw_pool_defects.jsonl"))}
    pairs = [d for d in planted("near_duplicate") if d["line"] in rows and d["source_line"] in rows][:n_pairs]
    lines = [line for d in pairs for line in (d["source_line"], d["line"])]
    lines += [line for line in rows if line not in defective and line not in lines][:n_clean]
    random.Random(2).shuffle(lines)  # a pair's two tickets are not side by side
    position = {line: i for i, line in enumerate(lines)}
    truth = {tuple(sorted((position[d["line"]], position[d["source_line"]]))) for d in pairs}
    return [rows[line]["text"] for line in lines], lines, truth


def check_similarity(similarity: Callable) -> None:
    """Lesson 02: `similarity(a, b)` is the Jaccard similarity of the two texts' 5-byte shingles after normalising."""
    from course_lib.curation.dedup import jaccard, shingles

    exercise = "similarity"
    texts, lines, truth = duplicate_sample(n_pairs=10, n_clean=10)
    cases = list(truth) + [(i, i + 1) for i in range(20, 29)] + [(0, 0)]
    for i, j in cases:
        want = jaccard(shingles(texts[i]), shingles(texts[j]))
        got = call(exercise, similarity, texts[i], texts[j],
                   hint="normalise (unicodedata.normalize('NFKC', text).casefold(), runs of whitespace to one space, "
                        "strip), encode as UTF-8, take every 5-byte slice as a set, then |A & B| / |A | B|.")
        got = number(exercise, got, "a number from 0 to 1")
        if not math.isclose(got, want, abs_tol=1e-9):
            fail(exercise, f"for raw-pool lines {lines[i]} and {lines[j]} your similarity is {got:.3f}, it should be "
                           f"{want:.3f}",
                 "compare sets of shingles (no repeats), after the same normalisation of both texts; identical texts "
                 "have similarity 1.")
    return passed(exercise, "20 pairs of raw-pool tickets match course_lib.curation.dedup")


def check_near_duplicates(near_duplicates: Callable) -> None:
    """Lesson 02: `near_duplicates(texts, threshold)` finds the planted near duplicates, and nothing else."""
    exercise = "near_duplicates"
    texts, lines, truth = duplicate_sample()
    got = call(exercise, near_duplicates, list(texts), 0.7,
               hint="compare every pair i < j with your similarity and keep those at or above the threshold.")
    try:
        found = {tuple(sorted((int(i), int(j)))) for i, j in got}
    except (TypeError, ValueError):
        fail(exercise, f"expected pairs of indices, got {got!r:.80}", "return a list of (i, j) tuples with i < j.")
    missed, extra = sorted(truth - found), sorted(found - truth)
    recall, precision = 1 - len(missed) / len(truth), (len(found) - len(extra)) / len(found) if found else 0.0
    if missed:
        i, j = missed[0]
        fail(exercise, f"recall {recall:.2f}: you missed {len(missed)} of the {len(truth)} planted near duplicates, "
                       f"e.g. raw-pool lines {lines[i]} and {lines[j]}",
             "the planted pairs are 0.75 to 0.97 similar: check that every pair is compared and that the threshold "
             "is inclusive (>=).")
    if extra:
        i, j = extra[0]
        fail(exercise,
             f"precision {precision:.2f}: {len(extra)} of your {len(found)} pairs are not planted duplicates, "
             f"e.g. raw-pool lines {lines[i]} and {lines[j]}",
             "distinct tickets are below 0.6 similar; a pair of an index with itself is not a duplicate.")
    return passed(exercise, f"precision and recall 1.00 on {len(truth)} planted near duplicates among {len(texts)} "
                            "tickets")


def check_redact_emails(redact_emails: Callable) -> None:
    """Lesson 02: `redact_emails(text)` replaces every planted e-mail with <EMAIL> and leaves clean rows alone."""
    exercise = "redact_emails"
    rows = pool_rows()
    emails = [d for d in planted("pii") if "EMAIL" in d["values"] and d["line"] in rows]
    hint = ("an address is a local part (letters, digits, . _ % + -), @, and a domain of dot-separated parts ending in "
            "a top-level domain of 2 or more letters; re.sub(pattern, '<EMAIL>', text).")
    for defect in emails:
        text, value = rows[defect["line"]]["text"], defect["values"]["EMAIL"]
        got = call(exercise, redact_emails, text, hint=hint)
        if not isinstance(got, str):
            fail(exercise, f"expected the redacted text, got {type(got).__name__}", "return a string.")
        if value in got or "<EMAIL>" not in got:
            caught = sum(d["values"]["EMAIL"] not in redact_emails(rows[d["line"]]["text"]) for d in emails)
            fail(exercise, f"recall {caught}/{len(emails)}: on raw-pool line {defect['line']} {value!r} is still there",
                 hint)
    from course_lib.curation.pii import EMAIL

    clean = [row["text"] for row in rows.values() if not EMAIL.search(row["text"])][:200]
    for text in clean + ["Order ORD-123456 arrived, rated 5/5 @ home"]:
        got = call(exercise, redact_emails, text, hint=hint)
        if got != text:
            fail(exercise, f"a text with no e-mail address was changed: {text[:80]!r} became {str(got)[:80]!r}",
                 "replace only what matches a whole address; leave everything else exactly as it was.")
    return passed(exercise, f"all {len(emails)} planted e-mails redacted, {len(clean) + 1} texts without one unchanged")

