"""Human-style quality labels for (message, answer) pairs, for calibrating an LLM judge. Introduced in lesson 02.

Each message comes with two answers of different quality, so the labels serve pointwise scoring (1-5) and
pairwise comparison alike. The score follows a rubric, then, as with human raters, a share of labels is off
by one point:

    5  every field right          4  fields right, summary poor          3  sentiment or product wrong
    2  category or priority wrong  1  not one valid JSON object
"""

from __future__ import annotations

import json
import random

from course_lib.datafiles.rawpool import clean_tickets
from course_lib.judging import GOOD_FROM
from course_lib.noise import PROSE_BEFORE, break_json, wrong_label
from course_lib.tickets import PRODUCTS, SENTIMENTS, format_answer

SEED = 6101
MESSAGES = 150  # two answers each
RATER_NOISE = 0.1  # share of labels a rater puts one point off the rubric
QUALITIES = (5, 4, 3, 2, 1)


def answer_of_quality(label: dict, quality: int, rng: random.Random) -> tuple[str, list[str]]:
    """An answer the rubric scores `quality`, and the faults it has."""
    if quality == 5:
        return format_answer(label), []
    if quality == 4:
        return format_answer(dict(label, summary="Customer has an issue.")), ["vague summary"]
    if quality == 3:
        if rng.random() < 0.5:
            other = rng.choice([s for s in SENTIMENTS if s != label["sentiment"]])
            return format_answer(dict(label, sentiment=other)), ["wrong sentiment"]
        other = rng.choice([p for p in PRODUCTS if p != label["product"]])
        return json.dumps(dict(label, product=other), ensure_ascii=False, separators=(",", ":")), ["wrong product"]
    if quality == 2:
        bad = wrong_label(label, rng)
        field = "category" if bad["category"] != label["category"] else "priority"
        return format_answer(bad), [f"wrong {field}"]
    answer = format_answer(label)
    if rng.random() < 0.5:
        return break_json(answer, rng), ["invalid JSON"]
    return rng.choice(PROSE_BEFORE) + answer, ["prose around the JSON"]


def build_judgements(avoid: list[str], seed: int = SEED) -> list[dict]:
    """Two rated answers for each of MESSAGES messages dissimilar to `avoid`."""
    rng = random.Random(seed)
    rows = []
    for i, ticket in enumerate(clean_tickets(rng, MESSAGES, avoid=avoid)):
        for side, quality in zip("ab", rng.sample(QUALITIES, 2), strict=True):
            answer, faults = answer_of_quality(ticket.label, quality, rng)
            score = quality
            if rng.random() < RATER_NOISE:
                score = min(5, max(1, quality + rng.choice([-1, 1])))
            rows.append({"id": f"judge-{i:03d}{side}", "pair": f"judge-{i:03d}", "message": ticket.message,
                         "answer": answer, "score": score, "verdict": "good" if score >= GOOD_FROM else "bad",
                         "rubric_score": quality, "faults": faults})
    return rows
