"""The checks of the exercises in `solutions/` and `exercises/`: each says what is wrong and hints at the fix.

A check cell calls one `check_*` function with the learner's function. The check runs it on small inputs,
compares the result with the course's own implementation (the one the lesson uses), and raises
`ExerciseCheckFailed` with a message that names the input, what came out, what should have come out, and a hint.
An exercise left as generated (its body is `raise NotImplementedError()`) fails here, at its own check cell,
with the hint of that exercise. On success a check prints one line; the points are in the check cell's nbgrader
metadata.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

from course_lib.chat import IGNORE_INDEX
from course_lib.evaluation import bootstrap_ci
from course_lib.jsonl import read_jsonl
from course_lib.judging import agreement, load_judgements
from course_lib.paths import data_path


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


def close(got, want, *, atol: float = 1e-5) -> bool:
    import torch

    got = torch.as_tensor(got, dtype=torch.float64)
    want = torch.as_tensor(want, dtype=torch.float64)
    return got.shape == want.shape and bool(torch.allclose(got, want, atol=atol, rtol=1e-5, equal_nan=True))


# ---------------------------------------------------------------------------------------------------------
# Lesson 03: the assistant-only label mask, the shifted loss, a padded batch


def mask_conversations() -> list[list[dict]]:
    """Conversations for the label-mask check: two training rows and one with two assistant turns."""
    rows = []
    for _, row in read_jsonl(data_path("tickets", "train_curated.jsonl")):
        rows.append(row["messages"])
        if len(rows) == 2:
            break
    rows.append([{"role": "user", "content": "Is my order late?"}, {"role": "assistant", "content": "Yes, by a day."},
                 {"role": "user", "content": "Why?"}, {"role": "assistant", "content": "The courier lost a van."}])
    return rows


def check_label_mask(label_mask: Callable, tokenizer) -> None:
    """Lesson 03: `label_mask(input_ids, tokenizer)` keeps the assistant's tokens and their EOS, -100 elsewhere."""
    exercise = "label_mask"
    for row, messages in enumerate(mask_conversations()):
        encoded = tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True,
                                                return_assistant_tokens_mask=True)
        ids, keep = list(encoded["input_ids"]), list(encoded["assistant_masks"])
        want = [t if m else IGNORE_INDEX for t, m in zip(ids, keep, strict=True)]
        got = as_list(call(exercise, label_mask, list(ids), tokenizer,
                           hint="find each '<|im_start|>assistant\\n', keep the labels after it up to and including "
                                "the '<|im_end|>' that closes the turn, and set every other label to -100."),
                      exercise, "the labels")
        if len(got) != len(ids):
            fail(exercise, f"conversation {row} has {len(ids)} tokens but your labels have {len(got)}",
                 "return one label per input token: the same list with the skipped positions set to -100.")
        prompt_kept = [i for i, (g, w) in enumerate(zip(got, want, strict=True))
                       if w == IGNORE_INDEX and g != IGNORE_INDEX]
        answer_lost = [i for i, (g, w) in enumerate(zip(got, want, strict=True))
                       if w != IGNORE_INDEX and g == IGNORE_INDEX]
        changed = [i for i, (g, w) in enumerate(zip(got, want, strict=True))
                   if w != IGNORE_INDEX and g not in (w, IGNORE_INDEX)]
        if prompt_kept:
            fail(exercise, f"in conversation {row} your mask keeps {len(prompt_kept)} prompt token"
                           f"{'s' if len(prompt_kept) != 1 else ''}: positions {spans(prompt_kept)} should be -100",
                 "the system prompt, the user's turns and each '<|im_start|>assistant\\n' header are given, not "
                 "learned: only the answer tokens and the EOS that ends each answer keep their label.")
        if answer_lost:
            eos = [i for i in answer_lost if ids[i] == tokenizer.eos_token_id]
            fail(exercise, f"in conversation {row} your mask drops {len(answer_lost)} answer token"
                           f"{'s' if len(answer_lost) != 1 else ''}: positions {spans(answer_lost)} should keep "
                           "their token id as label",
                 ("the '<|im_end|>' that closes an answer must keep its label, or the model never learns to stop."
                  if eos else "keep every token of every assistant turn, not only the last one."))
        if changed:
            fail(exercise, f"in conversation {row} positions {spans(changed)} have labels that are not their token ids",
                 "a kept label is the input token itself; the model shifts labels by one position internally.")
    return passed(exercise, "answers and their EOS kept, everything else -100, on 3 conversations")


def reference_loss(logits, labels):
    import torch.nn.functional as F

    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX)


def check_shifted_loss(shifted_loss: Callable) -> None:
    """Lesson 03: `shifted_loss(logits, labels)` is the mean next-token cross-entropy over the labels
    that are not -100."""
    import torch
    import torch.nn.functional as F

    exercise = "shifted_loss"
    generator = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 7, 11, generator=generator)
    labels = torch.randint(0, 11, (2, 7), generator=generator)
    labels[0, :3] = IGNORE_INDEX  # a prompt
    labels[1, 5:] = IGNORE_INDEX  # padding
    want = reference_loss(logits, labels)
    got = call(exercise, shifted_loss, logits.clone(), labels.clone(),
               hint="position t predicts token t+1: compare logits[:, :-1] with labels[:, 1:], and let "
                    "F.cross_entropy skip -100 with ignore_index.")
    if not isinstance(got, torch.Tensor) or got.numel() != 1:
        fail(exercise, f"expected one number (a 0-d tensor), got {got!r}",
             "return the mean over the kept tokens, e.g. F.cross_entropy(..., ignore_index=-100).")
    kept = labels != IGNORE_INDEX
    unshifted = F.cross_entropy(logits.reshape(-1, 11), labels.reshape(-1), ignore_index=IGNORE_INDEX)
    summed = F.cross_entropy(logits[:, :-1].reshape(-1, 11), labels[:, 1:].reshape(-1), ignore_index=IGNORE_INDEX,
                             reduction="sum")
    if close(got, want):
        return passed(exercise, f"loss {float(got):.4f} on a 2 x 7 batch with a masked prompt and padding")
    if close(got, unshifted):
        fail(exercise, f"your loss {float(got):.4f} compares each position's logits with its own token",
             "shift by one: logits[:, :-1] predict labels[:, 1:].")
    if close(got, summed):
        fail(exercise, f"your loss {float(got):.4f} is the sum over tokens; the mean is {float(want):.4f}",
             "divide by the number of kept tokens (reduction='mean' does that).")
    fail(exercise, f"your loss is {float(got):.4f}, the shifted mean over the {int(kept[:, 1:].sum())} kept tokens "
                   f"is {float(want):.4f}",
         "skip the -100 labels (ignore_index=-100) and shift by one position.")


def check_pad_batch(pad_batch: Callable) -> None:
    """Lesson 03: `pad_batch(rows, pad_id)` right-pads input ids, labels and an attention mask to the longest row."""
    import torch

    exercise = "pad_batch"
    rows = [{"input_ids": [5, 6, 7, 8], "labels": [-100, -100, 7, 8]}, {"input_ids": [5, 9], "labels": [-100, 9]},
            {"input_ids": [5, 6, 3], "labels": [-100, 6, 3]}]
    pad_id = 0
    batch = call(exercise, pad_batch, [dict(r) for r in rows], pad_id,
                 hint="pad every row to the longest one on the right: pad_id in input_ids, 0 in attention_mask, "
                      "-100 in labels.")
    if not isinstance(batch, dict) or not {"input_ids", "attention_mask", "labels"} <= set(batch):
        fail(exercise, f"expected a dict with input_ids, attention_mask and labels, got {batch!r:.120}",
             "return {'input_ids': ..., 'attention_mask': ..., 'labels': ...}, each a 3 x 4 tensor.")
    want = {"input_ids": [[5, 6, 7, 8], [5, 9, 0, 0], [5, 6, 3, 0]],
            "attention_mask": [[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]],
            "labels": [[-100, -100, 7, 8], [-100, 9, -100, -100], [-100, 6, 3, -100]]}
    for key, rows_want in want.items():
        got = batch[key]
        if not isinstance(got, torch.Tensor) or got.dtype != torch.long:
            fail(exercise, f"{key} should be a torch.long tensor, got {type(got).__name__}"
                           f"{' of ' + str(got.dtype) if isinstance(got, torch.Tensor) else ''}",
                 "build it with torch.tensor(list_of_lists, dtype=torch.long).")
        if got.tolist() != rows_want:
            hint = {"labels": "padding positions must be -100, or the loss trains the model to emit padding.",
                    "attention_mask": "1 for a real token, 0 for padding, so attention skips the padding.",
                    "input_ids": "append pad_id on the right until each row is as long as the longest."}[key]
            fail(exercise, f"{key} is {got.tolist()}, it should be {rows_want}", hint)
    return passed(exercise, "3 rows padded to 4 tokens, padding masked in attention and loss")


# ---------------------------------------------------------------------------------------------------------
# Lesson 06: answer log-probabilities, the DPO loss, implied rewards


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


# ---------------------------------------------------------------------------------------------------------
# Lesson 07: a bootstrap interval, Cohen's kappa, a paired comparison


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
        try:
            low, high = (float(v) for v in got)
        except (TypeError, ValueError):
            fail(exercise, f"expected (low, high), got {got!r:.80}", "return a tuple of two floats.")
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
    try:
        low, high = (float(v) for v in got)
    except (TypeError, ValueError):
        fail(exercise, f"expected (low, high), got {got!r:.80}", "return a tuple of two floats.")
    if math.isclose(low, want[0], abs_tol=1e-9) and math.isclose(high, want[1], abs_tol=1e-9):
        return passed(exercise, f"paired interval ({low:+.3f}, {high:+.3f}) on 200 tickets")
    if high - low > 1.5 * (want[1] - want[0]):
        fail(exercise, f"your interval ({low:+.3f}, {high:+.3f}) is much wider than the paired one "
                       f"({want[0]:+.3f}, {want[1]:+.3f})",
             "resample the same tickets for both systems: bootstrap the per-ticket differences, not each system alone.")
    fail(exercise, f"your interval is ({low:+.3f}, {high:+.3f}), it should be ({want[0]:+.3f}, {want[1]:+.3f})",
         "A minus B, ticket by ticket, then the percentile bootstrap of the mean difference.")


# ---------------------------------------------------------------------------------------------------------
# Lesson 01: the cost model


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


# ---------------------------------------------------------------------------------------------------------
# Lesson 04: LoRA by hand, against peft



def import_bitsandbytes_quietly() -> None:
    """Import bitsandbytes (peft loads it) with its import-time warnings held back, once.

    On a CPU with AVX-512 BF16, bitsandbytes logs at import that an optional kernel it would fetch from the Hub is
    missing. A check cell that writes anything to stderr scores 0 (nbgrader's rule), so the LoRA checks, which build
    peft models, import it first with its loggers silenced.
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

class TwoLayers:
    """A small two-layer model with LoRA from peft on both layers, B not 0 (built on first use)."""

    def __init__(self, rank: int = 4, alpha: float = 8.0):
        import torch

        import_bitsandbytes_quietly()
        from peft import LoraConfig, get_peft_model
        from torch import nn

        class Model(nn.Module):
            def __init__(self):
                super().__init__()
                self.up = nn.Linear(8, 12)
                self.down = nn.Linear(12, 8)

            def forward(self, x):
                return self.down(torch.relu(self.up(x)))

        torch.manual_seed(4)
        self.rank, self.alpha = rank, alpha
        self.model = get_peft_model(Model(), LoraConfig(r=rank, lora_alpha=alpha, target_modules=["up", "down"]))
        with torch.no_grad():
            for layer in (self.layer("up"), self.layer("down")):
                layer.lora_B["default"].weight.normal_(0, 0.5)  # a trained adapter: B is no longer 0

    def layer(self, name: str):
        return getattr(self.model.base_model.model, name)

    def parts(self, name: str):
        layer = self.layer(name)
        return (layer.base_layer.weight.detach().clone(), layer.base_layer.bias.detach().clone(),
                layer.lora_A["default"].weight.detach().clone(), layer.lora_B["default"].weight.detach().clone())


def check_lora_forward(lora_forward: Callable) -> None:
    """Lesson 04: `lora_forward(x, weight, bias, A, B, alpha)` equals peft's LoRA layer."""
    import torch

    exercise = "lora_forward"
    model = TwoLayers()
    x = torch.randn(5, 8, generator=torch.Generator().manual_seed(0))
    weight, bias, A, B = model.parts("up")
    with torch.no_grad():
        want = model.layer("up")(x)
        got = call(exercise, lora_forward, x.clone(), weight, bias, A, B, model.alpha,
                   hint="y = x @ weight.T + bias + (alpha / r) * (x @ A.T @ B.T), where r = A.shape[0].")
    if not isinstance(got, torch.Tensor) or got.shape != want.shape:
        fail(exercise,
             f"expected a tensor of shape {tuple(want.shape)}, got {getattr(got, 'shape', type(got).__name__)}",
             "A is r x in and B is out x r: x @ A.T has r columns, then @ B.T has out columns.")
    if close(got, want):
        return passed(exercise, "the output of a rank-4 layer matches peft's")
    base = x @ weight.T + bias
    if close(got, base):
        fail(exercise, "your output is the frozen layer's alone",
             "add the low-rank update (alpha / r) * x @ A.T @ B.T.")
    if close(got, base + model.alpha * (x @ A.T @ B.T)):
        fail(exercise, f"your update is scaled by alpha = {model.alpha:g}", "scale it by alpha / r (here 8 / 4 = 2).")
    fail(exercise, f"your output differs from peft's by up to {(got - want).abs().max():.3g}",
         "y = x @ weight.T + bias + (alpha / r) * (x @ A.T @ B.T).")


def check_lora_merge(lora_merge: Callable) -> None:
    """Lesson 04: `lora_merge(weight, A, B, alpha)` is the merged weight peft's merge_and_unload writes."""
    import torch

    exercise = "lora_merge"
    model = TwoLayers()
    parts = {name: model.parts(name) for name in ("up", "down")}
    merged = model.model.merge_and_unload()
    for name in ("up", "down"):
        weight, _, A, B = parts[name]
        want = getattr(merged, name).weight.detach()
        got = call(exercise, lora_merge, weight.clone(), A, B, model.alpha,
                   hint="merged = weight + (alpha / r) * B @ A: an out x in matrix like the weight itself.")
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            fail(exercise, f"the {name} layer's merged weight should have shape {tuple(want.shape)}, got "
                           f"{getattr(got, 'shape', type(got).__name__)}",
                 "B is out x r and A is r x in, so B @ A is out x in.")
        if not close(got, want):
            if close(got, weight):
                fail(exercise, f"your merged {name} weight is the frozen weight", "add (alpha / r) * B @ A to it.")
            fail(exercise, f"your merged {name} weight differs from peft's merge_and_unload by up to "
                           f"{(got - want).abs().max():.3g}", "merged = weight + (alpha / r) * B @ A.")
    return passed(exercise, "both layers' merged weights match peft's merge_and_unload")


def check_lora_parameters(lora_parameters: Callable) -> None:
    """Lesson 04: `lora_parameters(shapes, rank)` counts the adapter's trainable parameters as peft does."""
    exercise = "lora_parameters"
    for rank in (4, 16):
        model = TwoLayers(rank=rank, alpha=2 * rank)
        want = model.model.get_nb_trainable_parameters()[0]
        shapes = [tuple(model.layer(name).base_layer.weight.shape) for name in ("up", "down")]
        got = call(exercise, lora_parameters, list(shapes), rank,
                   hint="a layer with an out x in weight gets A (r x in) and B (out x r): r * (in + out) parameters.")
        if got != want:
            fail(exercise, f"for layers of shapes {shapes} at rank {rank} you count {got!r}, peft trains {want}",
                 "sum r * (in + out) over the adapted layers; the frozen weights and biases do not count.")
    return passed(exercise, "the adapter sizes at rank 4 and 16 match peft's trainable parameter count")


# ---------------------------------------------------------------------------------------------------------
# Lesson 05: NF4 by hand, against bitsandbytes


def nf4_levels():
    import bitsandbytes.functional as bnbf

    return bnbf.get_4bit_type("nf4", device="cpu")


def nf4_weights(seed: int = 5):
    import torch

    return torch.randn(32, 128, generator=torch.Generator().manual_seed(seed)) * 0.02


def bnb_codes(packed):
    import torch

    return torch.stack([packed.flatten() >> 4, packed.flatten() & 0x0F], dim=1).flatten()


def check_quantize_nf4(quantize_nf4: Callable) -> None:
    """Lesson 05: `quantize_nf4(w, levels, block)` gives bitsandbytes' NF4 codes and block absmax."""
    import bitsandbytes.functional as bnbf
    import torch

    exercise = "quantize_nf4"
    levels, w, block = nf4_levels(), nf4_weights(), 64
    packed, state = bnbf.quantize_4bit(w, blocksize=block, quant_type="nf4")
    got = call(exercise, quantize_nf4, w.clone(), levels, block,
               hint="split w into blocks of `block` weights, divide each block by its largest absolute value (absmax), "
                    "and give every weight the index of the nearest level.")
    try:
        codes, absmax = got
    except (TypeError, ValueError):
        fail(exercise, f"expected (codes, absmax), got {type(got).__name__}", "return a pair of tensors.")
    absmax = torch.as_tensor(absmax).flatten()
    if absmax.numel() != state.absmax.numel():
        fail(exercise, f"expected {state.absmax.numel()} block scales (one per {block} weights), got {absmax.numel()}",
             "reshape w to (-1, block) and take .abs().amax(dim=1).")
    if not close(absmax, state.absmax):
        fail(exercise, "your block scales differ from bitsandbytes' absmax",
             "each block's scale is its largest absolute weight, not its mean or its largest signed weight.")
    codes = torch.as_tensor(codes).flatten().long()
    want = bnb_codes(packed).long()
    if codes.numel() != want.numel():
        fail(exercise, f"expected one code per weight ({want.numel()}), got {codes.numel()}",
             "return codes for every weight.")
    wrong = (codes != want).nonzero().flatten().tolist()
    if len(wrong) > 2:  # a weight exactly at a midpoint may round either way
        example = wrong[0]
        scaled = (w.flatten()[example] / state.absmax[example // block]).item()
        fail(exercise, f"{len(wrong)} of {want.numel()} codes differ from bitsandbytes'; weight {example} scales to "
                       f"{scaled:+.4f}, whose nearest level is {int(want[example])} "
                       f"({levels[int(want[example])]:+.4f}), you gave {int(codes[example])}",
             "scale by the block's absmax first, then pick the nearest of the 16 levels "
             "(torch.bucketize against the midpoints between levels does that).")
    return passed(exercise, f"{want.numel()} codes and {absmax.numel()} block scales match bitsandbytes")


def check_dequantize_nf4(dequantize_nf4: Callable) -> None:
    """Lesson 05: `dequantize_nf4(codes, absmax, levels, shape)` matches bitsandbytes' dequantize_4bit."""
    import bitsandbytes.functional as bnbf
    import torch

    exercise = "dequantize_nf4"
    levels, w = nf4_levels(), nf4_weights(seed=6)
    packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4")
    codes = bnb_codes(packed).to(torch.uint8).reshape(-1, 64)
    want = bnbf.dequantize_4bit(packed, state, quant_type="nf4")
    got = call(exercise, dequantize_nf4, codes.clone(), state.absmax.clone(), levels, tuple(w.shape),
               hint="look each code's level up (levels[codes.long()]), multiply by its block's absmax, reshape.")
    if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(w.shape):
        fail(exercise, f"expected a tensor of shape {tuple(w.shape)}, got {getattr(got, 'shape', type(got).__name__)}",
             "reshape the result to `shape`.")
    if not close(got, want, atol=1e-6):
        if close(got, levels[codes.long()].reshape(w.shape), atol=1e-6):
            fail(exercise, "your weights are the levels themselves, between -1 and 1",
                 "multiply each block's levels by that block's absmax.")
        fail(exercise, f"your weights differ from bitsandbytes' by up to {(got - want).abs().max():.3g}",
             "levels[codes.long()] * absmax.unsqueeze(1), then .reshape(shape).")
    return passed(exercise, "the dequantised weights match bitsandbytes' dequantize_4bit")


def check_bits_per_weight(bits_per_weight: Callable) -> None:
    """Lesson 05: `bits_per_weight(block, double_quantised, nested_block)` matches what bitsandbytes stores."""
    import bitsandbytes.functional as bnbf
    import torch

    exercise = "bits_per_weight"
    w = torch.randn(256, 1024, generator=torch.Generator().manual_seed(7))
    for double in (False, True):
        packed, state = bnbf.quantize_4bit(w, blocksize=64, quant_type="nf4", compress_statistics=double)
        stored = packed.nbytes + state.absmax.nbytes
        if double:
            stored += state.state2.absmax.nbytes + state.offset.nbytes
        measured = 8 * stored / w.numel()
        got = call(exercise, bits_per_weight, 64, double, 256,
                   hint="4 bits per code, plus each block's scale spread over its weights: a 32-bit scale per 64 "
                        "weights; double quantised, an 8-bit scale per 64 weights plus a 32-bit one per 256 scales.")
        got = number(exercise, got, "a number of bits")
        if abs(got - measured) > 0.01:
            kind = "double quantised" if double else "single quantised"
            fail(exercise, f"{kind}, you count {got:.4f} bits per weight, bitsandbytes stores {measured:.4f}",
                 "4 + 32 / block" + (" becomes 4 + 8 / block + 32 / (block * nested_block)" if double else "") + ".")
    return passed(exercise, "4.5 and about 4.13 bits per weight, as bitsandbytes stores them")


# ---------------------------------------------------------------------------------------------------------
# Lesson 02: near duplicates and e-mail redaction, scored against the planted defects


def pool_rows() -> dict[int, dict]:
    """The raw pool's rows that parse, by line number, with their user message as "text"."""
    import json

    rows = {}
    with open(data_path("tickets", "raw_pool.jsonl"), encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            try:
                row = json.loads(line)
                rows[number] = {**row, "text": next(m["content"] for m in row["messages"] if m["role"] == "user")}
            except (ValueError, KeyError, TypeError, StopIteration):
                continue  # a malformed line: lesson 02's validator reports those
    return rows


def planted(kind: str) -> list[dict]:
    from course_lib.curation.score import load_defects

    return [d for d in load_defects(data_path("tickets", "raw_pool_defects.jsonl")) if d["kind"] == kind]


def duplicate_sample(n_pairs: int = 30, n_clean: int = 60):
    """Texts holding `n_pairs` planted near-duplicate pairs and `n_clean` rows with no planted defect."""
    from course_lib.curation.score import load_defects

    rows = pool_rows()
    defective = {d["line"] for d in load_defects(data_path("tickets", "raw_pool_defects.jsonl"))}
    pairs = [d for d in planted("near_duplicate") if d["line"] in rows and d["source_line"] in rows][:n_pairs]
    lines = [line for d in pairs for line in (d["source_line"], d["line"])]
    lines += [line for line in rows if line not in defective and line not in lines][:n_clean]
    random.Random(2).shuffle(lines)  # a pair's two tickets are not side by side
    position = {line: i for i, line in enumerate(lines)}
    truth = {tuple(sorted((position[d["line"]], position[d["source_line"]]))) for d in pairs}
    return [rows[line]["text"] for line in lines], lines, truth


def check_similarity(similarity: Callable) -> None:
    """Lesson 02: `similarity(a, b)` is the Jaccard similarity of the two texts' 5-byte shingles after normalising."""
    from course_lib.curation.dedup import jaccard, shingles

    exercise = "similarity"
    texts, lines, truth = duplicate_sample(n_pairs=10, n_clean=10)
    cases = list(truth) + [(i, i + 1) for i in range(20, 29)] + [(0, 0)]
    for i, j in cases:
        want = jaccard(shingles(texts[i]), shingles(texts[j]))
        got = call(exercise, similarity, texts[i], texts[j],
                   hint="normalise (unicodedata.normalize('NFKC', text).casefold(), runs of whitespace to one space, "
                        "strip), encode as UTF-8, take every 5-byte slice as a set, then |A & B| / |A | B|.")
        got = number(exercise, got, "a number from 0 to 1")
        if not math.isclose(got, want, abs_tol=1e-9):
            fail(exercise, f"for raw-pool lines {lines[i]} and {lines[j]} your similarity is {got:.3f}, it should be "
                           f"{want:.3f}",
                 "compare sets of shingles (no repeats), after the same normalisation of both texts; identical texts "
                 "have similarity 1.")
    return passed(exercise, "20 pairs of raw-pool tickets match course_lib.curation.dedup")


def check_near_duplicates(near_duplicates: Callable) -> None:
    """Lesson 02: `near_duplicates(texts, threshold)` finds the planted near duplicates, and nothing else."""
    exercise = "near_duplicates"
    texts, lines, truth = duplicate_sample()
    got = call(exercise, near_duplicates, list(texts), 0.7,
               hint="compare every pair i < j with your similarity and keep those at or above the threshold.")
    try:
        found = {tuple(sorted((int(i), int(j)))) for i, j in got}
    except (TypeError, ValueError):
        fail(exercise, f"expected pairs of indices, got {got!r:.80}", "return a list of (i, j) tuples with i < j.")
    missed, extra = sorted(truth - found), sorted(found - truth)
    recall, precision = 1 - len(missed) / len(truth), (len(found) - len(extra)) / len(found) if found else 0.0
    if missed:
        i, j = missed[0]
        fail(exercise, f"recall {recall:.2f}: you missed {len(missed)} of the {len(truth)} planted near duplicates, "
                       f"e.g. raw-pool lines {lines[i]} and {lines[j]}",
             "the planted pairs are 0.75 to 0.97 similar: check that every pair is compared and that the threshold "
             "is inclusive (>=).")
    if extra:
        i, j = extra[0]
        fail(exercise,
             f"precision {precision:.2f}: {len(extra)} of your {len(found)} pairs are not planted duplicates, "
             f"e.g. raw-pool lines {lines[i]} and {lines[j]}",
             "distinct tickets are below 0.6 similar; a pair of an index with itself is not a duplicate.")
    return passed(exercise, f"precision and recall 1.00 on {len(truth)} planted near duplicates among {len(texts)} "
                            "tickets")


def check_redact_emails(redact_emails: Callable) -> None:
    """Lesson 02: `redact_emails(text)` replaces every planted e-mail with <EMAIL> and leaves clean rows alone."""
    exercise = "redact_emails"
    rows = pool_rows()
    emails = [d for d in planted("pii") if "EMAIL" in d["values"] and d["line"] in rows]
    hint = ("an address is a local part (letters, digits, . _ % + -), @, and a domain of dot-separated parts ending in "
            "a top-level domain of 2 or more letters; re.sub(pattern, '<EMAIL>', text).")
    for defect in emails:
        text, value = rows[defect["line"]]["text"], defect["values"]["EMAIL"]
        got = call(exercise, redact_emails, text, hint=hint)
        if not isinstance(got, str):
            fail(exercise, f"expected the redacted text, got {type(got).__name__}", "return a string.")
        if value in got or "<EMAIL>" not in got:
            caught = sum(d["values"]["EMAIL"] not in redact_emails(rows[d["line"]]["text"]) for d in emails)
            fail(exercise, f"recall {caught}/{len(emails)}: on raw-pool line {defect['line']} {value!r} is still there",
                 hint)
    from course_lib.curation.pii import EMAIL

    clean = [row["text"] for row in rows.values() if not EMAIL.search(row["text"])][:200]
    for text in clean + ["Order ORD-123456 arrived, rated 5/5 @ home"]:
        got = call(exercise, redact_emails, text, hint=hint)
        if got != text:
            fail(exercise, f"a text with no e-mail address was changed: {text[:80]!r} became {str(got)[:80]!r}",
                 "replace only what matches a whole address; leave everything else exactly as it was.")
    return passed(exercise, f"all {len(emails)} planted e-mails redacted, {len(clean) + 1} texts without one unchanged")
