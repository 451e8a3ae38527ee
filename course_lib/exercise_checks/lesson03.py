"""Lesson 03's exercise checks: the assistant-only label mask, the shifted loss, a padded batch."""

from __future__ import annotations

from collections.abc import Callable

from course_lib.chat import IGNORE_INDEX
from course_lib.exercise_checks.report import as_list, call, close, fail, passed, spans
from course_lib.jsonl import read_jsonl
from course_lib.paths import data_path


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

