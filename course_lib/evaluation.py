"""Scoring answers on the ticket task: validity, per-field accuracy, macro-F1, ROUGE-L, with confidence intervals.

Introduced in lesson 03 (scoring on the gold set) and extended in lesson 07 (ROUGE-L of the summary, paired
comparison of two systems, Wilson intervals). Every metric is a mean or a function of per-item results. A share of
items (valid JSON, a field right) gets a Wilson score interval, which stays honest at 0% and 100%; the others
(macro-F1, mean ROUGE-L) get a percentile bootstrap interval by resampling the items.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from statistics import NormalDist

from course_lib.chat import GENERATION_BATCH_SIZE, generate
from course_lib.tickets import CATEGORIES, KEY_ORDER, validate_ticket

LABEL_FIELDS = tuple(k for k in KEY_ORDER if k != "summary")  # fields with one right answer
# metrics that are a mean over items, so two systems can be compared item by item
PER_ITEM_METRICS = ("json_valid", "schema_valid", "exact_match", "summary_rouge_l",
                    *(f"{k}_accuracy" for k in LABEL_FIELDS))
# per-item metrics whose item values are 0 or 1: shares of items, which get a Wilson interval
PROPORTION_METRICS = tuple(m for m in PER_ITEM_METRICS if m != "summary_rouge_l")


@dataclass(frozen=True)
class ItemScore:
    """What one answer got right."""

    json_valid: bool  # the answer is exactly one JSON object
    schema_valid: bool  # ... that follows the ticket schema
    fields: dict[str, bool]  # per label field: equal to the gold value
    predicted_category: str | None  # the category it gave (None when unparsable)
    summary_rouge_l: float = 0.0  # ROUGE-L F1 of its summary against the gold summary (0 without a summary)

    @property
    def exact_match(self) -> bool:
        """Every label field right (the free-text summary aside)."""
        return all(self.fields.values())

    def value(self, metric: str) -> float:
        """This item's value of a per-item metric (one of PER_ITEM_METRICS), e.g. 1.0 or 0.0 for "exact_match".
        Lesson 07."""
        if metric.endswith("_accuracy") and metric[: -len("_accuracy")] in self.fields:
            return float(self.fields[metric[: -len("_accuracy")]])
        if metric in ("json_valid", "schema_valid", "exact_match", "summary_rouge_l"):
            return float(getattr(self, metric))
        raise ValueError(f"{metric!r} is not a per-item metric; per-item metrics are: {', '.join(PER_ITEM_METRICS)}")


@lru_cache(maxsize=1)
def _rouge_scorer():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"])


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 of `prediction` against `reference`: longest common word subsequence, lower-cased (rouge-score).
    Lesson 07."""
    return _rouge_scorer().score(reference, prediction)["rougeL"].fmeasure


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
    summary = data.get("summary")
    rouge = rouge_l(summary, gold["summary"]) if isinstance(summary, str) else 0.0
    return ItemScore(True, not validate_ticket(data), fields, category, rouge)


def macro_f1(predicted: Sequence[str | None], gold: Sequence[str], labels: Sequence[str] = CATEGORIES) -> float:
    """Unweighted mean of per-label F1 over `labels` that occur in `gold` or `predicted` (None counts as wrong)."""
    present = [label for label in labels if label in gold or label in predicted]
    scores = []
    for label in present:
        tp = sum(p == label and g == label for p, g in zip(predicted, gold, strict=True))
        fp = sum(p == label and g != label for p, g in zip(predicted, gold, strict=True))
        fn = sum(p != label and g == label for p, g in zip(predicted, gold, strict=True))
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
        "summary_rouge_l": sum(i.summary_rouge_l for i in items) / n,
    }
    for key in LABEL_FIELDS:
        out[f"{key}_accuracy"] = sum(i.fields[key] for i in items) / n
    return out


def bootstrap(statistic: Callable[[list[int]], dict[str, float]], n: int, *, n_boot: int = 1000, alpha: float = 0.05,
              seed: int = 0) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap intervals of each value `statistic(indices)` returns,
    over `n` items resampled with replacement."""
    import numpy as np

    if n < 1:
        raise ValueError("cannot bootstrap an empty set: there are no items to resample")
    draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # row b: the items of resample b
    samples: dict[str, list[float]] = {}
    for indices in draws.tolist():
        for key, value in statistic(indices).items():
            samples.setdefault(key, []).append(value)
    lo, hi = int(alpha / 2 * n_boot), min(n_boot - 1, int((1 - alpha / 2) * n_boot))
    return {key: (sorted(v)[lo], sorted(v)[hi]) for key, v in samples.items()}


def wilson_interval(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a proportion, `successes` out of `n`, at confidence 1 - alpha. Lesson 07.

    Unlike a percentile bootstrap it does not shrink to zero width at 0 or n successes: 0 out of 200 gives
    [0, 0.019], close to the "rule of three" bound 3/n.
    """
    if n < 1:
        raise ValueError("a proportion of zero items has no interval: score at least one item")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n={n}, got {successes}")
    z = NormalDist().inv_cdf(1 - alpha / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def bootstrap_ci(statistic: Callable[[list[int]], float], n: int, *, n_boot: int = 1000, alpha: float = 0.05,
                 seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of one statistic of `n` items."""
    return bootstrap(lambda idx: {"value": statistic(idx)}, n, n_boot=n_boot, alpha=alpha, seed=seed)["value"]


@dataclass
class Report:
    """Task metrics of one system on one set, each with a 95% interval (Wilson for shares, bootstrap otherwise)."""

    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]
    items: list[ItemScore] = field(repr=False)
    answers: list[str] = field(repr=False)
    golds: list[dict] = field(default_factory=list, repr=False)  # the gold label of each item, in order

    def line(self, keys: Sequence[str] = ("json_valid", "schema_valid", "category_accuracy", "category_macro_f1",
                                          "exact_match")) -> str:
        """One line: each metric with its interval, e.g. 'json_valid 0.97 [0.95, 0.99]'."""
        return "  ".join(f"{k} {self.metrics[k]:.3f} [{self.intervals[k][0]:.3f}, {self.intervals[k][1]:.3f}]"
                         for k in keys)


def score_answers(answers: Sequence[str], golds: Sequence[dict], *, n_boot: int = 1000, seed: int = 0) -> Report:
    """Score answers against gold labels: every task metric with its 95% interval.

    Shares of items (PROPORTION_METRICS) get a Wilson interval; macro-F1 and mean ROUGE-L a percentile bootstrap.
    """
    if len(answers) != len(golds):
        raise ValueError(f"{len(answers)} answers for {len(golds)} gold labels; score them in pairs")
    if not answers:
        raise ValueError("there are no answers to score; pass at least one answer and its gold label")
    items = [score_item(a, g) for a, g in zip(answers, golds, strict=True)]
    metrics = metrics_of(items, golds)
    intervals = bootstrap(lambda idx: metrics_of([items[i] for i in idx], [golds[i] for i in idx]), len(items),
                          n_boot=n_boot, seed=seed)
    for metric in PROPORTION_METRICS:
        intervals[metric] = wilson_interval(round(sum(item.value(metric) for item in items)), len(items))
    return Report(metrics, intervals, items, list(answers), list(golds))


@dataclass(frozen=True)
class Comparison:
    """Two systems scored on the same items, compared item by item on one metric. Lesson 07."""

    metric: str  # a per-item metric, e.g. "exact_match"
    a: float  # system A's value of the metric
    b: float  # system B's value
    differences: list[float] = field(repr=False)  # per item: A's value minus B's
    interval: tuple[float, float]  # paired bootstrap interval of the mean difference
    a_wins: int  # items where A scores higher
    b_wins: int  # items where B scores higher
    ties: int  # items where both score the same

    @property
    def difference(self) -> float:
        """Mean per-item difference, A minus B (equal to `a - b`)."""
        return sum(self.differences) / len(self.differences)

    def line(self) -> str:
        """One line, e.g.
        'exact_match: A 0.620 vs B 0.480, A-B +0.140 [+0.080, +0.200]; A better on 70, B on 14, 316 ties'."""
        low, high = self.interval
        return (f"{self.metric}: A {self.a:.3f} vs B {self.b:.3f}, A-B {self.difference:+.3f} [{low:+.3f}, "
                f"{high:+.3f}]; A better on {self.a_wins}, B on {self.b_wins}, {self.ties} ties")


def compare(report_a: Report, report_b: Report, *, metric: str = "exact_match", n_boot: int = 1000, alpha: float = 0.05,
            seed: int = 0) -> Comparison:
    """Paired comparison of two reports on the same items: per-item differences, a paired bootstrap interval, wins.
    Lesson 07."""
    if metric not in PER_ITEM_METRICS:
        raise ValueError(f"{metric!r} cannot be compared item by item; choose one of: {', '.join(PER_ITEM_METRICS)} "
                         "(category_macro_f1 is a property of the whole set, not of one item)")
    if len(report_a.items) != len(report_b.items):
        raise ValueError(f"report A has {len(report_a.items)} items and report B {len(report_b.items)}; "
                         "a paired comparison needs both systems scored on the same items in the same order")
    if report_a.golds and report_b.golds:
        for i, (gold_a, gold_b) in enumerate(zip(report_a.golds, report_b.golds, strict=True)):
            if gold_a != gold_b:
                raise ValueError(f"item {i} has different gold labels in the two reports ({gold_a} vs {gold_b}); "
                                 "score both systems on the same rows in the same order")
    a = [item.value(metric) for item in report_a.items]
    b = [item.value(metric) for item in report_b.items]
    differences = [x - y for x, y in zip(a, b, strict=True)]
    # the same resampled items for both systems: that is what makes the interval "paired"
    interval = bootstrap_ci(lambda idx: sum(differences[i] for i in idx) / len(idx), len(differences),
                            n_boot=n_boot, alpha=alpha, seed=seed)
    return Comparison(metric=metric, a=sum(a) / len(a), b=sum(b) / len(b), differences=differences, interval=interval,
                      a_wins=sum(d > 0 for d in differences), b_wins=sum(d < 0 for d in differences),
                      ties=sum(d == 0 for d in differences))


def gold_labels(rows: Sequence[dict]) -> list[dict]:
    """The gold label of each ticket row (its assistant turn, parsed)."""
    return [json.loads(row["messages"][-1]["content"]) for row in rows]


def prompts_of(rows: Sequence[dict]) -> list[list[dict]]:
    """Each row's conversation without the assistant's answer: what the model is asked."""
    return [[m for m in row["messages"] if m["role"] != "assistant"] for row in rows]


def evaluate(model, tokenizer, rows: Sequence[dict], *, batch_size: int = GENERATION_BATCH_SIZE,
             max_new_tokens: int = 96, n_boot: int = 1000) -> Report:
    """Greedy answers of `model` to ticket rows (e.g. the gold set), scored with intervals."""
    answers = generate(model, tokenizer, prompts_of(rows), max_new_tokens=max_new_tokens, batch_size=batch_size)
    return score_answers(answers, gold_labels(rows), n_boot=n_boot)
