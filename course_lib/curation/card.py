"""The dataset card: what went in, what came out, what was removed and why, and how long the rows are."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence

import numpy as np

from course_lib.curation.dedup import KEEP_RULE
from course_lib.paths import course_root


def length_stats(values: Sequence[int]) -> dict[str, float]:
    """min, mean, median, 95th percentile and max of `values` (zeros when empty)."""
    if not values:
        return {"min": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    arr = np.asarray(values)
    return {"min": int(arr.min()), "mean": round(float(arr.mean()), 1), "p50": float(np.percentile(arr, 50)),
            "p95": float(np.percentile(arr, 95)), "max": int(arr.max())}


def histogram(values: Sequence[int], bins: int = 10) -> list[tuple[int, int, int]]:
    """(low, high, count) for `bins` equal-width bins over `values`."""
    if not values:
        return []
    counts, edges = np.histogram(values, bins=bins)
    return [(int(edges[i]), int(edges[i + 1]), int(c)) for i, c in enumerate(counts)]


def card_markdown(card: dict) -> str:
    """The card as Markdown, for a README next to the data."""
    lines = [f"# Dataset card: {card['name']}", "", f"Source: `{display_path(card['source'])}`", "",
             "| | rows |", "| --- | --- |", f"| rows read | {card['lines']} |", f"| kept | {card['kept']} |"]
    lines += [f"| removed: {kind} | {n} |" for kind, n in card["removed"].items()]
    lines += ["", "Personal data redacted (rows kept, values replaced by placeholders):", ""]
    lines += [f"- {kind}: {n}" for kind, n in card["redacted"].items()] or ["- none"]
    if card["redacted"]:
        lines += ["",
                  "Each replaced value is listed, with its line, field and kind, in the changes file "
                  "(`.changes.jsonl`)."]
    lines += ["", f"Duplicates: {KEEP_RULE}."]
    lines += ["", f"Languages of the kept rows: {', '.join(f'{k} {v}' for k, v in card['languages'].items())}", ""]
    if card.get("labels"):
        lines += ["Labels of the kept rows:", ""] + [f"- {k}: {v}" for k, v in card["labels"].items()] + [""]
    unit = card["length_unit"]
    lines += [f"Length of the kept rows ({unit}): " + ", ".join(f"{k} {v}" for k, v in card["length"].items()), "",
              f"| {unit} | rows |", "| --- | --- |"]
    lines += [f"| {lo}-{hi} | {n} |" for lo, hi, n in card["length_histogram"]]
    lines += ["", "Settings:", "", "```json", json.dumps(card["settings"], indent=2), "```", ""]
    return "\n".join(lines)


def display_path(path: str) -> str:
    """`path` relative to the course root when it lies inside it, so a card reads the same on every machine."""
    from pathlib import Path

    try:
        return Path(path).resolve().relative_to(course_root()).as_posix()
    except ValueError:
        return str(path)


def count_values(values: Sequence[str]) -> dict[str, int]:
    """Counts of each value, most common first."""
    return dict(Counter(values).most_common())
