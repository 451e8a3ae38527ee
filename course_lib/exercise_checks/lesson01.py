"""Lesson 01's exercise checks: the cost model."""

from __future__ import annotations

import math
from collections.abc import Callable

from course_lib.exercise_checks.report import call, fail, number, passed


def check_break_even(break_even: Callable) -> None:
    """Lesson 01: `break_even(one_time_a, per_request_a, one_time_b, per_request_b)` in requests; inf if never."""
    from course_lib.strategy import CostOption
    from course_lib.strategy import break_even as reference

    exercise = "break_even"
    cases = [(0.0, 0.004, 1012.0, 0.0002), (0.0, 0.0002, 1012.0, 0.0002), (500.0, 0.001, 100.0, 0.002),
             (0.0, 0.001, 2000.0, 0.0015), (300.0, 0.001, 300.0, 0.001)]
    for case in cases:
        want = reference(CostOption("a", case[0], case[1]), CostOption("b", case[2], case[3]))
        got = call(exercise, break_even, *case,
                   hint="solve one_time_a + per_request_a * n = one_time_b + per_request_b * n for n; when the "
                        "lines never meet (the same price per request, or they only grow apart) it is math.inf.")
        got = number(exercise, got, "a number of requests", "return a float (math.inf if never).")
        if got == want or (math.isfinite(want) and math.isclose(got, want, rel_tol=1e-9)):
            continue
        where = (f"with one-time costs ${case[0]:g} and ${case[2]:g} and ${case[1] * 1000:g} and "
                 f"${case[3] * 1000:g} per 1,000 requests")
        if math.isinf(want):
            fail(exercise, f"{where} your break-even is {got:g} requests, but the two never cost the same",
                 "a negative n is in the past, and a zero price difference never pays anything back: return "
                 "math.inf in both cases (0 when the one-time costs are equal too).")
        fail(exercise, f"{where} your break-even is {got:,.1f} requests, it should be {want:,.1f}",
             "n = (one_time_b - one_time_a) / (per_request_a - per_request_b).")
    return passed(exercise, f"{len(cases)} pairs of options match course_lib.strategy.break_even")


def check_break_even_volume(break_even_volume: Callable) -> None:
    """Lesson 01: requests a month above which a self-hosted option (fixed monthly cost) is the cheaper one."""
    from course_lib.strategy import HOURS_PER_MONTH, CostOption
    from course_lib.strategy import break_even_volume as reference

    exercise = "break_even_volume"
    serving = HOURS_PER_MONTH * 0.80
    cases = [(0.004, 0.0, 0.0, serving), (0.004, 0.0, 0.0002, serving + 100), (0.001, 50.0, 0.002, 0.0)]
    for per_request_a, per_month_a, per_request_b, per_month_b in cases:
        want = reference(CostOption("a", 0.0, per_request_a, serving_per_month=per_month_a),
                         CostOption("b", 0.0, per_request_b, serving_per_month=per_month_b))
        got = call(exercise, break_even_volume, per_request_a, per_month_a, per_request_b, per_month_b,
                   hint="a month at volume v costs per_request * v + per_month; solve for the v where both are equal, "
                        "math.inf when there is none above 0.")
        got = number(exercise, got, "requests a month", "return a float (math.inf if never).")
        if got == want or (math.isfinite(want) and math.isclose(got, want, rel_tol=1e-9)):
            continue
        fail(exercise, f"with ${per_month_a:,.0f} and ${per_month_b:,.0f} a month fixed, your break-even is "
                       f"{got:,.1f} requests a month, it should be {want:,.1f}",
             "v = (per_month_b - per_month_a) / (per_request_a - per_request_b); one-time costs play no part here.")
    return passed(exercise, "3 pairs match course_lib.strategy.break_even_volume")


def check_cheapest(cheapest: Callable) -> None:
    """Lesson 01: `cheapest(options, volume, months)` names the option that costs least over `months` months."""
    from course_lib.strategy import CostOption

    exercise = "cheapest"
    options = [CostOption("large few-shot", 0.0, 0.004),
               CostOption("fine-tuned small", 1012.0, 0.0002),
               CostOption("fine-tuned self-hosted", 1012.0, 0.0, serving_per_month=584.0)]
    for volume, months in ((5_000, 12), (50_000, 3), (50_000, 12), (1_000_000, 12)):
        total = {o.name: o.one_time + months * (o.per_request * volume + o.per_month) for o in options}
        want = min(total, key=total.get)
        got = call(exercise, cheapest, list(options), volume, months,
                   hint="the cost over the months is one_time + months * (per_request * volume + per_month).")
        if got != want:
            costs = ", ".join(f"{name} ${cost:,.0f}" for name, cost in total.items())
            fail(exercise, f"at {volume:,} requests a month over {months} months you chose {got!r}, "
                           f"the cheapest is {want!r} ({costs})",
                 "count the one-time cost once, and both the per-request and the monthly costs every month; "
                 "return the option's name.")
    return passed(exercise, "the cheapest option at four volumes and horizons")

