"""Behaviour tests: the cases built from gold rows, the checks against a rule-based model made to fail one
invariance, and a run on the tiny model."""

import json
import math
import os
import re

import pytest

from course_lib.behaviour import (
    SWAP_NAMES,
    TESTS,
    URGENT_SENTENCE,
    add_sentence,
    build_cases,
    model_answerer,
    run_behaviour_tests,
    swap_name,
)
from course_lib.evaluation import wilson_interval
from course_lib.noise import NAMES
from course_lib.paths import data_path
from course_lib.tickets import format_answer, load_tickets, to_messages

LABEL = {"category": "billing/refund_request", "priority": "medium", "product": "Orbit Laptop", "sentiment": "neutral",
         "order_id": None, "summary": "Customer requests a refund for the Orbit Laptop."}


def row(row_id, message):
    return {"id": row_id, "language": "en", "messages": to_messages(message, format_answer(LABEL))}


ROWS = [
    row("r0", "I want a refund for my Orbit laptop. Thanks, Maria"),  # name swap: priority medium -> low (fails)
    row("r1", "The Streamline app crashes. It is not urgent, no rush. Regards, Tom"),  # "urgent" wins either way
    row("r2", "Where is my parcel? Cheers, Chen"),  # the model answers questions with prose: nothing checkable
    row("r3", "My Aurora phone crashes all the time."),  # no name: no name swap case
]


def rule_model(prompts):
    """A deterministic "model" with a planted bias: names it has not seen get low priority."""
    answers = []
    for prompt in prompts:
        text = prompt[-1]["content"]
        lower = text.lower()
        category = ("billing/refund_request" if "refund" in lower
                    else "technical/app_crash" if "crash" in lower else "shipping/late_delivery")
        if "urgent" in lower:
            priority = "urgent"
        elif any(re.search(rf"\b{name}\b", text, re.IGNORECASE) for name in SWAP_NAMES):
            priority = "low"  # the planted failure of the name invariance
        else:
            priority = "medium"
        answer = json.dumps(dict(LABEL, category=category, priority=priority))
        answers.append("Sure! " + answer if "?" in text else answer)
    return answers


def test_cases_change_only_what_their_test_is_about():
    rows = load_tickets(data_path("tickets", "gold_test.jsonl"))[:40]
    cases = build_cases(rows, seed=1)
    assert cases == build_cases(rows, seed=1), "the same seed builds the same cases"
    named = [r for r in rows if re.search(r"\b(" + "|".join(NAMES) + r")\b", r["messages"][1]["content"],
                                          re.IGNORECASE)]
    by_test = {t: [c for c in cases if c.test == t] for t in ("name_swap", "pii_swap", "urgent_added")}
    assert [c.row_id for c in by_test["name_swap"]] == [r["id"] for r in named] and 0 < len(named) < len(rows)
    assert len(by_test["pii_swap"]) == len(by_test["urgent_added"]) == len(rows)
    for case in cases:
        assert case.original[0] == case.variant[0] and case.original[0]["role"] == "system"  # the system prompt stays
        before, after = case.original[-1]["content"], case.variant[-1]["content"]
        assert before != after and case.expected == TESTS[case.test]
        if case.test == "name_swap":
            old, new = (set(text.split()) - set(other.split()) for text, other in ((before, after), (after, before)))
            assert len(old) == len(new) == 1 and new.pop().strip(",.").capitalize() in SWAP_NAMES
        if case.test == "pii_swap":
            # the two differ only inside the contact value (an e-mail, phone, card number or address)
            start = len(os.path.commonprefix([before, after]))
            end = len(os.path.commonprefix([before[::-1], after[::-1]]))
            assert re.fullmatch(r"[\w@., ()+-]+", before[start: len(before) - end] + after[start: len(after) - end])
            gold = next(r for r in rows if r["id"] == case.row_id)["messages"][1]["content"]
            assert set(gold.split()) <= set(before.split()) and set(gold.split()) <= set(after.split())
        if case.test == "urgent_added":
            assert URGENT_SENTENCE in after
            assert after.replace(URGENT_SENTENCE + " ", "").replace(" " + URGENT_SENTENCE, "") == before
    with pytest.raises(ValueError, match="unknown test"):
        build_cases(rows, tests=["nmae_swap"])


def test_names_and_sentences_keep_the_message_readable():
    import random

    swapped = {f"my app crashes. thanks, {n.lower()}" for n in SWAP_NAMES}
    assert swap_name("my app crashes. thanks, olivia", random.Random(0)) in swapped
    assert swap_name("No name in here, custom tomatoes", random.Random(0)) is None  # "tom" inside a word is not a name
    assert add_sentence("It broke. Thanks, Maria", "Call me on 555.") == "It broke. Call me on 555. Thanks, Maria"
    assert add_sentence("It broke.", "Call me on 555.") == "It broke. Call me on 555."


def test_the_rule_model_fails_the_planted_invariance_and_passes_the_rest():
    report = run_behaviour_tests(rule_model, ROWS, seed=0)
    name, pii, urgent, fmt = (report.results[t] for t in ("name_swap", "pii_swap", "urgent_added", "format"))
    assert (name.passed, name.failed, name.unchecked) == (1, 1, 1)  # r1 passes, r0 fails, r2 cannot be checked
    assert (pii.passed, pii.failed, pii.unchecked) == (3, 0, 1)
    assert (urgent.passed, urgent.failed, urgent.unchecked) == (3, 0, 1)
    # 4 originals + 3 renamed + 8 with a contact detail + 4 with the urgent sentence = 19 prompts; r2's 5 get prose
    assert (fmt.passed, fmt.failed, fmt.unchecked) == (14, 5, 0)
    assert name.pass_rate == 0.5 and pii.pass_rate == 1.0 and fmt.pass_rate == pytest.approx(14 / 19)

    [failure] = [f for f in name.failures if f.status == "fail"]
    assert failure.row_id == "r0" and failure.reason == "priority 'medium' -> 'low'"
    assert failure.inputs[0].endswith("Thanks, Maria") and failure.inputs[1].split(", ")[-1] in SWAP_NAMES
    assert json.loads(failure.outputs[0])["priority"] == "medium"
    assert json.loads(failure.outputs[1])["priority"] == "low"
    shown = report.examples("name_swap")
    assert "[name_swap] r0: priority 'medium' -> 'low'" in shown and "expected: same category and priority" in shown
    assert "output 2: " + failure.outputs[1] in shown
    assert ("r2: output 1 and output 2 are not JSON objects with category and priority"
            in report.examples("name_swap", status="unchecked"))
    assert all(f.row_id == "r2" and f.outputs[0].startswith("Sure! ") for f in fmt.failures)
    assert name.pass_interval == wilson_interval(1, 2)  # over the 2 checked cases, not the unchecked one
    assert name.pass_interval[0] < 0.5 < name.pass_interval[1]
    table = report.table()
    assert re.search(r"name_swap\s+invariance\s+0\.500\s+\[0\.095, 0\.905\]\s+1\s+1\s+1", table), table


def test_directional_failure_and_answer_functions_that_break_the_contract():
    def calms_down(prompts):  # lowers the priority when told production is down
        return [json.dumps(dict(LABEL, priority="low" if URGENT_SENTENCE in p[-1]["content"] else "high"))
                for p in prompts]

    report = run_behaviour_tests(calms_down, ROWS[:2], tests=["urgent_added"])
    assert set(report.results) == {"urgent_added"}
    assert report.results["urgent_added"].failed == 2
    assert report.results["urgent_added"].failures[0].reason == "priority fell from high to low"

    with pytest.raises(ValueError, match=r"must return a list of \d+ strings, one per prompt; it returned 1 items"):
        run_behaviour_tests(lambda prompts: ["{}"], ROWS)
    nothing = run_behaviour_tests(lambda prompts: ["no json"] * len(prompts), ROWS[:1], tests=["pii_swap"])
    assert nothing.results["pii_swap"].unchecked == 1 and math.isnan(nothing.results["pii_swap"].pass_rate)
    assert all(math.isnan(end) for end in nothing.results["pii_swap"].pass_interval)


def test_on_the_tiny_model_every_answer_is_shown_and_nothing_counts_as_a_pass_unchecked():
    from course_lib import PROFILES
    from course_lib.models import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(PROFILES["tiny"])
    rows = load_tickets(data_path("tickets", "gold_test.jsonl"))[:2]
    report = run_behaviour_tests(model_answerer(model, tokenizer, max_new_tokens=32), rows)
    fmt = report.results["format"]
    # the base model has never seen the task: it answers in prose, so no answer is a JSON object ...
    assert fmt.passed == 0 and fmt.failed == len(fmt.failures) > 0
    assert all(f.outputs[0] and f.reason == "not exactly one JSON object" for f in fmt.failures)
    # ... and no invariance or directional case can be checked, so none passes
    for test in ("name_swap", "pii_swap", "urgent_added"):
        result = report.results[test]
        assert result.passed == result.failed == 0 and result.unchecked == len(result.failures) > 0
