"""Argument checks the library shares: a value that makes no sense is an error that names it, never reinterpreted.

`max_steps=0` is not "the profile's budget" and `rank=0` is not "the profile's rank": only `None` asks for the
default, and anything else must be a usable value. Each check returns the value, so a call reads
`rank = whole_number("rank", rank, "Pass e.g. rank=8.")`.
"""

from __future__ import annotations

import math
import numbers


def whole_number(name: str, value: object, fix: str, *, minimum: int = 1) -> int:
    """`value` as an int if it is a whole number (not a bool) of at least `minimum`, else a ValueError naming `name`."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be a whole number of at least {minimum}, not {value!r}. {fix}")
    return int(value)


def positive_number(name: str, value: object, fix: str) -> float:
    """`value` as a float when it is a finite number above 0 (not a bool); else a ValueError naming `name`."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value)
            or not value > 0):
        raise ValueError(f"{name} must be a number above 0, not {value!r}. {fix}")
    return float(value)
