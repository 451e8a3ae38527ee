"""Scoring curation against the defects planted in a pool: precision and recall per kind."""

from __future__ import annotations

import json
from pathlib import Path

from course_lib.curation.pii import redact
from course_lib.curation.pipeline import CurationResult

# planted kind -> the check that should flag it
DETECTOR = {
    "exact_duplicate": "exact_duplicate",
    "near_duplicate": "near_duplicate",
    "wrong_label": "label_conflict",
    "pii": "pii",
    "malformed": "malformed",
    "truncated_answer": "invalid_answer",
    "overlong": "too_long",
    "off_task": "off_task",
    "other_language": "language",
    "test_overlap": "test_overlap",
}


def load_defects(path: str | Path) -> list[dict]:
    """The sidecar rows: {"line": ..., "kind": ..., ...}."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def score(result: CurationResult, defects: list[dict]) -> dict[str, dict]:
    """Per planted kind: planted, flagged, caught, precision (caught / flagged) and recall (caught / planted)."""
    found = result.found()
    table = {}
    for kind, check in DETECTOR.items():
        planted = {d["line"] for d in defects if d["kind"] == kind}
        flagged = found.get(check, set())
        caught = planted & flagged
        table[kind] = {
            "check": check, "planted": len(planted), "flagged": len(flagged), "caught": len(caught),
            "precision": round(len(caught) / len(flagged), 3) if flagged else None,
            "recall": round(len(caught) / len(planted), 3) if planted else None,
        }
    return table


def redaction_recall(defects: list[dict], rows_by_line: dict[int, dict]) -> dict[str, float]:
    """Per kind of personal data: the share of planted values that redaction removes from their row."""
    hits: dict[str, list[bool]] = {}
    for defect in defects:
        if defect["kind"] != "pii":
            continue
        text = "\n".join(m["content"] for m in rows_by_line[defect["line"]]["messages"])
        cleaned, _ = redact(text)
        for kind, value in defect["values"].items():
            hits.setdefault(kind, []).append(value not in cleaned)
    return {kind: round(sum(v) / len(v), 3) for kind, v in sorted(hits.items())}
