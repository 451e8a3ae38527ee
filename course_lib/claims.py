"""Claims about measured results, asserted with their margin.

Introduced in lesson 00. A lesson that says something about numbers it just computed ("the curated set beats
the raw pool") checks it with `claim(...)` right after: like `assert`, it stops the notebook when the claim does
not hold, and it says by how much the claim held or failed. The margin is the distance from the bound, in the
claim's own units, positive when the claim holds.

Numbers from training move a little from machine to machine (AVX2 or AVX-512 kernels, 1 or 2 threads) and
from seed to seed (`COURSE_SEED`). When `COURSE_CLAIMS_LOG` names a file, every claim also appends one JSON
line to it, with the lesson and cell it comes from: `make perturb` runs the lessons under such changes and tabulates
each claim's margin and spread (`benchmarks/claims.md`); it also sets `COURSE_CLAIMS_KEEP_GOING=1`,
so that a claim that fails is logged and the run goes on to measure the claims after it.
A claim is portable when its smallest margin is larger than its spread.

A check that a computation by hand equals the library's is a different kind of claim: the two add the same numbers
in another order, so they differ by float32 rounding alone. `float32_tolerance` is that rounding's size.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

LOG_ENV_VAR = "COURSE_CLAIMS_LOG"  # a JSONL file to append every claim to (set by `make perturb`)
KEEP_GOING_ENV_VAR = "COURSE_CLAIMS_KEEP_GOING"  # "1": a claim that fails is logged and printed, not raised (perturb)

COMPARISONS = {
    ">": lambda margin: margin > 0,
    ">=": lambda margin: margin >= 0,
    "<": lambda margin: margin > 0,
    "<=": lambda margin: margin >= 0,
}


class ClaimError(AssertionError):
    """A claim about a measured result does not hold."""


def margin_of(value: float, op: str, bound: float) -> float:
    """How far `value op bound` is from failing, in the value's units: positive or zero when it holds."""
    if op not in COMPARISONS:
        raise ValueError(f"op must be one of {', '.join(COMPARISONS)}, not {op!r}")
    return float(value) - float(bound) if op in (">", ">=") else float(bound) - float(value)


FLOAT32_EPS = 2.0**-23  # torch.finfo(torch.float32).eps: the gap between 1.0 and the next float32


def float32_tolerance(reference, terms: int) -> float:
    """The largest difference float32 rounding explains between two computations of `reference` (a tensor or number).

    Two computations that add the same `terms` numbers in a different order (other kernels, other threads, another
    grouping) differ by rounding that grows like sqrt(terms) * eps32 relative to the result's size. The tolerance is
    sqrt(terms) * eps32 * the largest magnitude in `reference` (at least 1). A real mistake, a wrong mask or a missing
    scale, is many orders of magnitude larger.
    """
    largest = reference.abs().max().item() if hasattr(reference, "abs") else abs(float(reference))
    return math.sqrt(terms) * FLOAT32_EPS * max(largest, 1.0)


_lesson: str | None = None  # the lesson whose claims run now: set by `profiles.start_lesson`, logged with each claim


def begin_lesson(lesson: str) -> None:
    """Name the lesson whose claims follow (`profiles.start_lesson` calls it), so that a claims log says where each
    claim comes from even when no notebook path is known (a `make test` run)."""
    global _lesson
    _lesson = lesson


def _cell() -> int | None:
    """The number of the notebook cell running now (its `In [n]`), or None outside IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None


def claim(text: str, value: float, op: str, bound: float) -> float:
    """Assert `value op bound` (op one of > >= < <=) and return the margin; `text` says the claim in words.

    e.g. `claim("fine-tuning lifts category accuracy above 0.85", after.metrics["category_accuracy"], ">=", 0.85)`
    """
    margin = margin_of(value, op, bound)
    holds = COMPARISONS[op](margin)
    log = os.environ.get(LOG_ENV_VAR)
    if log:
        record = {"claim": text, "value": float(value), "op": op, "bound": float(bound), "margin": margin,
                  "holds": holds, "cell": _cell(), "lesson": _lesson}
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        with Path(log).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
    if not holds:
        message = f"{text}: {value:.4g} {op} {bound:.4g} does not hold (margin {margin:+.4g})"
        if log and os.environ.get(KEEP_GOING_ENV_VAR) == "1":  # measuring every claim of a run, failed ones too
            print(f"CLAIM FAILED (logged, not raised): {message}")
            return margin
        raise ClaimError(message)
    return margin
