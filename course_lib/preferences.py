"""Preference pairs for DPO: one prompt, a chosen answer, and a rejected answer with a realistic fault.

Introduced in lesson 02 (as data) and used in lesson 06. Rows follow TRL's conversational preference format:

    {"id": ..., "prompt": [system, user], "chosen": [assistant], "rejected": [assistant], "fault": ...}

Faults, in equal shares: invalid JSON, a wrong field, prose wrapped around the JSON, personal data from the
message leaked into the summary, and a verbose summary that breaks the length limit.

This module holds the check of a usable row, the rule that names the faults in an answer, an answer with a given
fault, and training rows with bad habits; `course_lib.datafiles.preferences` wrote the shipped pairs.
"""

from __future__ import annotations

import json
import random

from course_lib.curation.pii import find_pii
from course_lib.noise import PII_SENTENCES, PROSE_AFTER, PROSE_BEFORE, break_json, fake_pii, wrong_label
from course_lib.tickets import SUMMARY_MAX_CHARS, format_answer

FAULTS = ("invalid_json", "wrong_field", "prose_wrapped", "leaked_pii", "verbose")


def faulty_answer(message: str, label: dict, fault: str, rng: random.Random) -> tuple[str, str]:
    """(message, answer with `fault`) for one ticket; leaked_pii first adds contact details to the message."""
    chosen = format_answer(label)
    if fault == "invalid_json":
        return message, break_json(chosen, rng)
    if fault == "wrong_field":
        return message, format_answer(wrong_label(label, rng))
    if fault == "prose_wrapped":
        return message, rng.choice(PROSE_BEFORE) + chosen + rng.choice(PROSE_AFTER)
    if fault == "leaked_pii":
        kind = rng.choice(["EMAIL", "PHONE"])
        value = fake_pii(kind, rng)
        message = f"{message} {rng.choice(PII_SENTENCES[kind]).format(v=value)}"
        leaked = dict(label, summary=(label["summary"][:-1] + f", contact {value}.")[:SUMMARY_MAX_CHARS])
        return message, json.dumps(leaked, ensure_ascii=False, separators=(",", ":"))
    if fault == "verbose":
        long = (f"{label['summary'][:-1]}. The customer wrote: {message} "
                "They expect a quick and thorough answer from the support team.")
        return message, json.dumps(dict(label, summary=long), ensure_ascii=False, separators=(",", ":"))
    raise ValueError(f"unknown fault {fault!r}; faults are {', '.join(FAULTS)}")


class PreferenceError(ValueError):
    """A preference row that cannot be trained on; the message names the row and the fix."""


def check_preference_row(row: object, where: str) -> None:
    """Raise PreferenceError naming `where` if the row lacks a prompt, chosen or rejected, or they are unusable."""
    if not isinstance(row, dict):
        raise PreferenceError(f"{where}: a preference row must be a JSON object with prompt, chosen and rejected")
    for key in ("prompt", "chosen", "rejected"):
        if key not in row:
            raise PreferenceError(f"{where}: field {key!r} is missing; every row needs prompt, chosen and rejected")
    texts = {}
    for key in ("prompt", "chosen", "rejected"):
        value = row[key]
        turns = value if isinstance(value, list) else [{"content": value}]
        text = "".join(t.get("content") or "" for t in turns if isinstance(t, dict))
        if not text.strip():
            raise PreferenceError(f"{where}: field {key!r} is empty; fill it in or drop the row")
        texts[key] = text
    if texts["chosen"].strip() == texts["rejected"].strip():
        raise PreferenceError(f"{where}: 'chosen' and 'rejected' are identical, so the pair teaches nothing; drop the "
                              "row")


# ---------------------------------------------------------------------------------------------------------
# Lesson 06: faults a rule can see, and a model that has them

TARGETED_FAULTS = ("prose_wrapped", "leaked_pii", "verbose")  # the habits lesson 06 removes with DPO


def answer_faults(answer: str) -> list[str]:
    """The faults a rule sees in one answer without knowing its label, in the order of FAULTS. Lesson 06.

    invalid_json: no JSON object can be read from it; prose_wrapped: text before or after the object; leaked_pii:
    an e-mail address, phone, card number or street address anywhere in it; verbose: a summary over the limit.
    A wrong field needs the right label, so it is left to the gold-set metrics.
    """
    text = answer.strip()
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if 0 <= start < end else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        return ["invalid_json"]
    faults = []
    if start > 0 or end < len(text) - 1:
        faults.append("prose_wrapped")
    if find_pii(text):
        faults.append("leaked_pii")
    if isinstance(data.get("summary"), str) and len(data["summary"]) > SUMMARY_MAX_CHARS:
        faults.append("verbose")
    return faults


def with_bad_habits(rows: list[dict], share: float, seed: int = 0) -> list[dict]:
    """A copy of SFT rows in which `share` of the answers have one of TARGETED_FAULTS. Lesson 06.

    It stands for answers from a sloppy source (a chatty model they were distilled from, or agents' notes copied
    as they were): a model trained on them picks up the habits that lesson 06 then removes. Each changed row gets
    a "fault" field; a leaked_pii row also gets contact details added to its message, as the fault needs them.
    """
    if not 0 <= share <= 1:
        raise ValueError(f"share must be between 0 and 1; got {share}")
    rng = random.Random(seed)
    changed = []
    for row in rows:
        if rng.random() >= share:
            changed.append(row)
            continue
        fault = rng.choice(TARGETED_FAULTS)
        user = next(m for m in row["messages"] if m["role"] == "user")["content"]
        label = json.loads(row["messages"][-1]["content"])
        message, answer = faulty_answer(user, label, fault, rng)
        messages = [m for m in row["messages"] if m["role"] == "system"] + [
            {"role": "user", "content": message}, {"role": "assistant", "content": answer}]
        changed.append({**row, "messages": messages, "fault": fault})
    return changed
