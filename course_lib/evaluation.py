"""Scoring answers on the ticket task: validity, per-field accuracy, macro-F1, with bootstrap intervals.

Introduced in lesson 03 (scoring on the gold set) and extended in lesson 07. Every metric is a mean or a
function of per-item results, so each gets a bootstrap confidence interval by resampling the items.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from course_lib.tickets import CATEGORIES, KEY_ORDER, validate_ticket

LABEL_FIELDS = tuple(k for k in KEY_ORDER if k != "summary")  # fields with one right answer


@dataclass(frozen=True)
class ItemScore:
    """What one answer got right."""

    json_valid: bool  # the answer is exactly one JSON object
    schema_valid: bool  # ... that follows the ticket schema
    fields: dict[str, bool]  # per label field: equal to the gold value
    predicted_category: str | None  # the category it gave (None when unparsable)

    @property
    def exact_match(self) -> bool:
        """Every label field right (the free-text summary aside)."""
        return all(self.fields.values())


def score_item(answer: str, gold: dict) -> ItemScore:
    """Score one answer against the gold label."""
    try:
        data = json.loads(answer)
    except (json.JSONDecodeError, TypeError):
        data = None
    if not isinstance(data, dict):
        return ItemScore(False, False, {k: False for k in LABEL_FIELDS}, None)
    fields = {k: k in data and data[k] == gold[k] for k in LABEL_FIELDS}
    category = data.get("category") if isinstance(data.get("category"), str) else None
    return ItemScore(True, not validate_ticket(data), fields, category)


def macro_f1(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str] = CATEGORIES) -> float:
    """Unweighted mean of per-label F1 over `labels` that occur in `gold` or `predicted` (None counts as wrong)."""
    present = [label for label in labels if label in gold or label in predicted]
    scores = []
    for label in present:
        tp = sum(p == label and g == label for p, g in zip(predicted, gold))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def metrics_of(items: Sequence[ItemScore], golds: Sequence[dict]) -> dict[str, float]:
    """The task metrics of a set of scored answers."""
    n = len(items)
    out = {
        "json_valid": sum(i.json_valid for i in items) / n,
        "schema_valid": sum(i.schema_valid for i in items) / n,
        "exact_match": sum(i.exact_match for i in items) / n,
        "category_macro_f1": macro_f1([i.predicted_category for i in items], [g["category"] for g in golds]),
    }
    for key in LABEL_FIELDS:
        out[f"{key}_accuracy"] = sum(i.fields[key] for i in items) / n
    return out


def bootstrap(statistic: Callable[[list[int]], dict[str, float]], n: int, *, n_boot: int = 1000, alpha: float = 0.05,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of each value `statistic(indices)` returns, over `n` items resampled with replacement."""
    rng = random.Random(seed)
    samples: dict[str, list[float]] = {}
    for _ in range(n_boot):
        for key, value in statistic([rng.randrange(n) for _ in range(n)]).items():
            samples.setdefault(key, []).append(value)
    lo, hi = int(alpha / 2 * n_boot), min(n_boot - 1, int((1 - alpha / 2) * n_boot))
    return {key: (sorted(v)[lo], sorted(v)[hi]) for key, v in samples.items()}


def bootstrap_ci(statistic: Callable[[list[int]], float], n: int, *, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of one statistic of `n` items."""
    return bootstrap(lambda idx: {"value": statistic(idx)}, n, n_boot=n_boot, alpha=alpha, seed=seed)["value"]


@dataclass
class Report:
    """Task metrics of one system on one set, each with a bootstrap interval."""

    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    items: list[ItemScore] = field(repr=False)
    answers: list[str] = field(repr=False)

    def line(self, keys: Sequence[str] = ("json_valid", "schema_valid", "category_accuracy", "category_macro_f1", "exact_match")) -> str:
        """One line: each metric with its interval, e.g. 'json_valid 0.97 [0.95, 0.99]'."""
        return "  ".join(f"{k} {self.metrics[k]:.3f} [{self.intervals[k][0]:.3f}, {self.intervals[k][1]:.3f}]" for k in keys)


def score_answers(answers: Sequence[str], golds: Sequence[dict], *, n_boot: int = 1000, seed: int = 0) -> Report:
    """Score answers against gold labels: every task metric with its 95% bootstrap interval."""
    if len(answers) != len(golds):
        raise ValueError(f"{len(answers)} answers for {len(golds)} gold labels; score them in pairs")
    items = [score_item(a, g) for a, g in zip(answers, golds)]
    metrics = metrics_of(items, golds)
    intervals = bootstrap(lambda idx: metrics_of([items[i] for i in idx], [golds[i] for i in idx]), len(items),
                          n_boot=n_boot, seed=seed)
    return Report(metrics, intervals, items, list(answers))


def gold_labels(rows: Sequence[dict]) -> list[dict]:
    """The gold label of each ticket row (its assistant turn, parsed)."""
    return [json.loads(row["messages"][-1]["content"]) for row in rows]


def prompts_of(rows: Sequence[dict]) -> list[list[dict]]:
    """Each row's conversation without the assistant's answer: what the model is asked."""
    return [[m for m in row["messages"] if m["role"] != "assistant"] for row in rows]


def evaluate(model, tokenizer, rows: Sequence[dict], *, batch_size: int = 32, max_new_tokens: int = 96,
             n_boot: int = 1000) -> Report:
    """Greedy answers of `model` to ticket rows (e.g. the gold set), scored with intervals."""
    from course_lib.chat import generate

    answers = generate(model, tokenizer, prompts_of(rows), max_new_tokens=max_new_tokens, batch_size=batch_size)
    return score_answers(answers, gold_labels(rows), n_boot=n_boot)
