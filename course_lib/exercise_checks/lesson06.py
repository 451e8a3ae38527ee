"""Lesson 06's exercise checks: answer log-probabilities, the DPO loss, implied rewards."""

from __future__ import annotations

import math
from collections.abc import Callable

from course_lib.chat import IGNORE_INDEX
from course_lib.exercise_checks.report import call, close, fail, import_bitsandbytes_quietly, passed


def reference_answer_logps(logits, labels):
    import torch

    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    targets = labels[:, 1:]
    kept = targets != IGNORE_INDEX
    picked = logps.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * kept).sum(-1)


def check_answer_logps(answer_logps: Callable) -> None:
    """Lesson 06: `answer_logps(logits, labels)` sums the log-probabilities of each row's answer tokens."""
    import torch

    exercise = "answer_logps"
    generator = torch.Generator().manual_seed(6)
    logits = torch.randn(3, 6, 9, generator=generator)
    labels = torch.randint(0, 9, (3, 6), generator=generator)
    labels[:, :2] = IGNORE_INDEX
    labels[2, 4:] = IGNORE_INDEX
    want = reference_answer_logps(logits, labels)
    got = call(exercise, answer_logps, logits.clone(), labels.clone(),
               hint="log_softmax over the vocabulary, gather each next token's log-probability "
                    "(logits[:, :-1] with labels[:, 1:]), zero the -100 positions and sum per row.")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != (3,):
        fail(exercise, f"expected one value per row (shape (3,)), got {getattr(got, 'shape', type(got).__name__)}",
             "sum over the sequence dimension only: .sum(-1).")
    if close(got, want):
        return passed(exercise, "summed answer log-probabilities of 3 rows")
    kept = (labels[:, 1:] != IGNORE_INDEX).sum(-1)
    if close(got * kept, want):
        fail(exercise, "your values are the mean log-probability per token",
             "DPO compares whole answers: sum the log-probabilities, do not average them.")
    if close(got, torch.log_softmax(logits, -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
             .mul(labels != IGNORE_INDEX).sum(-1)):
        fail(exercise, "your values score each position's logits against its own token",
             "shift by one: logits[:, :-1] predict labels[:, 1:].")
    fail(exercise, f"your values are {[round(float(v), 3) for v in got]}, they should be "
                   f"{[round(float(v), 3) for v in want]}",
         "use log_softmax (not softmax, not raw logits) and leave out the -100 positions.")


def dpo_cases():
    import torch

    policy_chosen = torch.tensor([-12.0, -30.0, -8.5, -20.0])
    policy_rejected = torch.tensor([-15.0, -29.0, -9.0, -26.0])
    ref_chosen = torch.tensor([-13.0, -30.5, -8.0, -21.0])
    ref_rejected = torch.tensor([-14.0, -29.5, -9.5, -22.0])
    return policy_chosen, policy_rejected, ref_chosen, ref_rejected


def check_dpo_loss(dpo_loss: Callable) -> None:
    """Lesson 06: `dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)` is the loss per pair."""
    import torch

    import_bitsandbytes_quietly()
    from course_lib.dpo import dpo_loss as reference

    exercise = "dpo_loss"
    cases = dpo_cases()
    for beta in (0.1, 0.5):
        want = reference(*cases, beta=beta)[0]
        got = call(exercise, dpo_loss, *[c.clone() for c in cases], beta,
                   hint="loss = -logsigmoid(beta * ((policy_chosen - ref_chosen) - (policy_rejected - ref_rejected))).")
        if not isinstance(got, torch.Tensor) or tuple(got.shape) != (4,):
            fail(exercise, f"expected one loss per pair (shape (4,)), got {getattr(got, 'shape', type(got).__name__)}",
                 "do not average: return the loss of each pair.")
        if close(got, want):
            continue
        swapped = reference(cases[1], cases[0], cases[3], cases[2], beta=beta)[0]
        no_beta = -torch.nn.functional.logsigmoid((cases[0] - cases[2]) - (cases[1] - cases[3]))
        if close(got, swapped):
            fail(exercise, f"at beta={beta} your loss is small where the rejected answer gained more",
                 "the margin is chosen minus rejected: "
                 "(policy_chosen - ref_chosen) - (policy_rejected - ref_rejected).")
        if close(got, no_beta):
            fail(exercise, f"at beta={beta} your loss does not change with beta",
                 "multiply the margin by beta inside the logsigmoid.")
        fail(exercise, f"at beta={beta} your losses are {[round(float(v), 4) for v in got]}, they should be "
                       f"{[round(float(v), 4) for v in want]}",
             "use -F.logsigmoid(...) of the beta-scaled margin of the log-ratios against the reference.")
    start = torch.tensor([-12.0, -30.0])
    at_start = call(exercise, dpo_loss, start, start - 5, start, start - 5, 0.1, hint="")
    if not close(at_start, torch.full((2,), math.log(2))):
        fail(exercise, "when the policy is the reference, every loss should be log 2 = 0.6931",
             "the loss depends on the policy only through its log-ratios against the reference.")
    return passed(exercise, "per-pair losses at beta 0.1 and 0.5 match course_lib.dpo; log 2 at the start")


def check_reward_stats(reward_stats: Callable) -> None:
    """Lesson 06: `reward_stats(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)` as TRL logs them."""
    import_bitsandbytes_quietly()
    from course_lib.dpo import dpo_loss as reference
    from course_lib.dpo import reward_stats as reference_stats

    exercise = "reward_stats"
    cases = dpo_cases()
    beta = 0.1
    _, chosen, rejected = reference(*cases, beta=beta)
    want = reference_stats(chosen, rejected)
    got = call(exercise, reward_stats, *[c.clone() for c in cases], beta,
               hint="reward = beta * (policy - reference) for each answer; then the means, the mean margin and the "
                    "share of pairs whose chosen reward is higher.")
    if not isinstance(got, dict) or set(got) != set(want):
        fail(exercise, f"expected a dict with the keys {sorted(want)}, got {got!r:.160}",
             "use TRL's names: rewards/chosen, rewards/rejected, rewards/margins, rewards/accuracies.")
    hints = {"rewards/chosen": "the mean over pairs of beta * (policy_chosen - ref_chosen).",
             "rewards/rejected": "the mean over pairs of beta * (policy_rejected - ref_rejected).",
             "rewards/margins": "the mean of chosen reward minus rejected reward, pair by pair.",
             "rewards/accuracies": "the share of pairs (0 to 1) whose chosen reward is above the rejected one."}
    for key, value in want.items():
        try:
            number = float(got[key])
        except (TypeError, ValueError):
            fail(exercise, f"{key} is {got[key]!r}, not a number", "return plain floats (tensor.item()).")
        if not math.isclose(number, value, abs_tol=1e-6):
            fail(exercise, f"{key} is {number:.4f}, it should be {value:.4f}", hints[key])
    return passed(exercise, "the four reward statistics match course_lib.dpo.reward_stats")

