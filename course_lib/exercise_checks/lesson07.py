"""Lesson 07's exercise checks: a bootstrap interval, Cohen's kappa, a paired comparison."""

from __future__ import annotations

import math
from collections.abc import Callable

from course_lib.evaluation import bootstrap_ci
from course_lib.exercise_checks.report import call, fail, interval, number, passed
from course_lib.judging import agreement, load_judgements


def gold_correct(seed: int = 7, n: int = 200, rate: float = 0.62) -> list[int]:
    """A reproducible list of 0/1 outcomes, one per gold ticket."""
    import numpy as np

    return [int(x) for x in (np.random.default_rng(seed).random(n) < rate)]


def check_bootstrap_interval(bootstrap_interval: Callable) -> None:
    """Lesson 07: `bootstrap_interval(correct, n_boot, alpha, seed)` is the percentile bootstrap of the mean."""
    exercise = "bootstrap_interval"
    for seed, n in ((0, 200), (1, 40)):
        correct = gold_correct(seed=seed + 7, n=n)
        want = bootstrap_ci(lambda idx, correct=correct: sum(correct[i] for i in idx) / len(idx), n, n_boot=1000,
                            alpha=0.05, seed=seed)
        got = call(exercise, bootstrap_interval, list(correct), 1000, 0.05, seed,
                   hint="draws = np.random.default_rng(seed).integers(0, n, size=(n_boot, n)); the mean of each row; "
                        "sort them and take positions int(alpha/2 * n_boot) and int((1 - alpha/2) * n_boot).")
        low, high = interval(exercise, got)
        mean = sum(correct) / n
        if not low <= mean <= high:
            fail(exercise, f"on {n} tickets your interval ({low:.3f}, {high:.3f}) does not contain the accuracy "
                           f"{mean:.3f}", "the interval's ends are percentiles of the resampled means around it.")
        if not (math.isclose(low, want[0], abs_tol=1e-9) and math.isclose(high, want[1], abs_tol=1e-9)):
            normal = 1.96 * math.sqrt(mean * (1 - mean) / n)
            hint = ("that is the normal approximation; resample the tickets instead."
                    if math.isclose(high - low, 2 * normal, rel_tol=0.02) else
                    "draw all resamples at once with the given seed, exactly as in the first hint, so the result can "
                    "be compared with course_lib.evaluation.bootstrap_ci.")
            fail(exercise, f"on {n} tickets (seed {seed}) your interval is ({low:.3f}, {high:.3f}), "
                           f"it should be ({want[0]:.3f}, {want[1]:.3f})", hint)
    return passed(exercise, "percentile intervals on 200 and 40 tickets match course_lib.evaluation.bootstrap_ci")


def kappa_cases() -> list[tuple[list, list]]:
    """Label pairs for the kappa check: people against a judge on the shipped judgements, and hand-made cases."""
    rows = load_judgements()
    human = [r["verdict"] for r in rows]
    contrarian = ["bad" if h == "good" else "good" for h in human]
    always_good = ["good"] * len(human)
    return [(human, human[1:] + human[:1]), (human, contrarian), (human, always_good),
            (["a", "b", "c", "a", "b", "c"], ["a", "b", "b", "a", "c", "c"])]


def score_cases() -> list[tuple[list, list]]:
    """Pairs of 1-5 scores: people's scores on the shipped judgements against two made-up judges."""
    scores = [r["score"] for r in load_judgements()]
    lenient = [min(5, s + 1) for s in scores]
    middling = [3 if i % 3 else s for i, s in enumerate(scores)]
    return [(scores, lenient), (scores, middling)]


def check_cohen_kappa(cohen_kappa: Callable, labels: str = "verdicts") -> None:
    """Lesson 07: `cohen_kappa(first, second)` is agreement beyond chance, on good/bad verdicts or on 1-5 scores."""
    from course_lib.judging import cohen_kappa as reference

    exercise = "cohen_kappa"
    for first, second in (kappa_cases() if labels == "verdicts" else score_cases()):
        want = reference(first, second)
        got = call(exercise, cohen_kappa, list(first), list(second),
                   hint="kappa = (p_o - p_e) / (1 - p_e): p_o the share of items with the same label, p_e the sum over "
                        "labels of (share of first with that label) x (share of second with it).")
        got = number(exercise, got, "a number")
        if math.isclose(got, want, abs_tol=1e-9):
            continue
        observed = agreement(first, second)
        labels = sorted(set(first) | set(second))
        case = f"on {len(first)} items with labels {labels}"
        if math.isclose(got, observed, abs_tol=1e-9):
            fail(exercise, f"{case} you returned the raw agreement {observed:.3f}; kappa is {want:.3f}",
                 "subtract the agreement two raters reach by chance (p_e) and divide by 1 - p_e.")
        fail(exercise, f"{case} your kappa is {got:.3f}, it should be {want:.3f}",
             "p_e multiplies the two raters' label shares label by label and sums; a rater who always says the same "
             "label has kappa 0, one who always disagrees on two balanced labels has kappa near -1.")
    return passed(exercise, f"kappa matches course_lib.judging.cohen_kappa on the {labels} of several pairs of raters")


def check_paired_interval(paired_interval: Callable) -> None:
    """Lesson 07: `paired_interval(a, b, n_boot, seed)` is the paired bootstrap interval of mean(a) - mean(b)."""
    exercise = "paired_interval"
    a = gold_correct(seed=11, rate=0.62)
    b = [x if i % 5 else 1 - x for i, x in enumerate(a)]  # B answers like A except on every fifth ticket
    differences = [x - y for x, y in zip(a, b, strict=True)]
    want = bootstrap_ci(lambda idx: sum(differences[i] for i in idx) / len(idx), len(a), n_boot=1000, seed=0)
    got = call(exercise, paired_interval, list(a), list(b), 1000, 0,
               hint="the per-ticket differences a[i] - b[i], then the percentile bootstrap of their mean, with the "
                    "same draws as in bootstrap_interval.")
    low, high = interval(exercise, got)
    if math.isclose(low, want[0], abs_tol=1e-9) and math.isclose(high, want[1], abs_tol=1e-9):
        return passed(exercise, f"paired interval ({low:+.3f}, {high:+.3f}) on 200 tickets")
    if high - low > 1.5 * (want[1] - want[0]):
        fail(exercise, f"your interval ({low:+.3f}, {high:+.3f}) is much wider than the paired one "
                       f"({want[0]:+.3f}, {want[1]:+.3f})",
             "resample the same tickets for both systems: bootstrap the per-ticket differences, not each system alone.")
    fail(exercise, f"your interval is ({low:+.3f}, {high:+.3f}), it should be ({want[0]:+.3f}, {want[1]:+.3f})",
         "A minus B, ticket by ticket, then the percentile bootstrap of the mean difference.")

