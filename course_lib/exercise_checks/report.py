"""How a check reports: the error it raises with its hint, the line it prints on success, and small helpers."""

from __future__ import annotations

from collections.abc import Callable, Sequence


class ExerciseCheckFailed(AssertionError):
    """An exercise's result is wrong; the message says where and hints at the fix."""


def fail(exercise: str, message: str, hint: str) -> None:
    raise ExerciseCheckFailed(f"{exercise}: {message}\nHint: {hint}")


def call(exercise: str, function: Callable, *args, hint: str, **kwargs):
    """`function(*args, **kwargs)`; an unwritten exercise or an error in it becomes a failed check with `hint`."""
    if not callable(function):
        fail(exercise, f"expected a function, got {type(function).__name__}", "pass the function itself, without ().")
    try:
        return function(*args, **kwargs)
    except NotImplementedError:
        fail(exercise, f"`{function.__name__}` is not written yet: it (or a function it calls) still raises "
                       "NotImplementedError.",
             f"replace `raise NotImplementedError()` in the cell above with your code. {hint}")
    except ExerciseCheckFailed:
        raise
    except Exception as error:  # the learner's code raised: say so here, with the input it was given
        raise ExerciseCheckFailed(f"{exercise}: `{function.__name__}` raised {type(error).__name__}: {error}\n"
                                  f"Hint: {hint}") from error


def number(exercise: str, got, what: str, hint: str = "return a float.") -> float:
    """`got` as a float; anything that is not a number fails the check, saying what was expected."""
    try:
        return float(got)
    except (TypeError, ValueError):
        fail(exercise, f"expected {what}, got {got!r:.80}", hint)


def passed(exercise: str, detail: str) -> None:
    """Print the success line. Nothing is returned: nbgrader would read a number as a partial grade."""
    print(f"{exercise}: correct ({detail}).")


def spans(positions: Sequence[int]) -> str:
    """Positions as short ranges: [0, 1, 2, 7] -> '0–2, 7'."""
    parts, run = [], []
    for p in sorted(positions):
        if run and p == run[-1] + 1:
            run.append(p)
            continue
        if run:
            parts.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [p]
    if run:
        parts.append(f"{run[0]}–{run[-1]}" if len(run) > 1 else str(run[0]))
    return ", ".join(parts)


def as_list(value, exercise: str, what: str) -> list:
    try:
        return [int(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]
    except (TypeError, ValueError):
        fail(exercise, f"{what} should be a list of whole numbers, got {type(value).__name__}",
             "return a plain list (or a 1-d tensor) with one entry per token.")



def interval(exercise: str, got) -> tuple[float, float]:
    """`got` as the (low, high) pair of an interval, or a failed check that says what came back instead."""
    try:
        low, high = (float(v) for v in got)
    except (TypeError, ValueError):
        fail(exercise, f"expected (low, high), got {got!r:.80}", "return a tuple of two floats.")
    return low, high

def close(got, want, *, atol: float = 1e-5) -> bool:
    import torch

    got = torch.as_tensor(got, dtype=torch.float64)
    want = torch.as_tensor(want, dtype=torch.float64)
    return got.shape == want.shape and bool(torch.allclose(got, want, atol=atol, rtol=1e-5, equal_nan=True))


def import_bitsandbytes_quietly() -> None:
    """Import bitsandbytes (peft and TRL load it) with its import-time warnings held back.

    On a CPU with AVX-512 BF16, bitsandbytes logs at import that an optional kernel it would fetch from the Hub is
    missing. A check cell that writes anything to stderr scores 0 (nbgrader's rule), so every check that imports
    bitsandbytes, peft or TRL calls this first.
    """
    import logging

    logger = logging.getLogger("bitsandbytes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        import bitsandbytes  # noqa: F401
    except ImportError:  # peft runs without it
        pass
    finally:
        logger.setLevel(level)
