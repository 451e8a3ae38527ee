"""Task metrics against hand-computed values, and bootstrap intervals that cover the truth."""

import json
import random

import pytest

from course_lib.evaluation import bootstrap_ci, macro_f1, score_answers, score_item

GOLD = {"category": "billing/refund_request", "priority": "medium", "product": "Orbit Laptop", "sentiment": "neutral",
        "order_id": None, "summary": "Customer requests a refund for the Orbit Laptop."}


def answer(**changes):
    return json.dumps({**GOLD, **changes})


def test_item_scores():
    assert score_item(answer(), GOLD).exact_match
    wrong = score_item(answer(priority="high"), GOLD)
    assert wrong.schema_valid and not wrong.exact_match and wrong.fields["priority"] is False and wrong.fields["category"]
    off_schema = score_item(answer(category="refunds"), GOLD)
    assert off_schema.json_valid and not off_schema.schema_valid
    assert not score_item("Sure! " + answer(), GOLD).json_valid
    assert not score_item("[1, 2]", GOLD).json_valid


def test_macro_f1_by_hand():
    gold = ["a", "a", "b", "b"]
    predicted = ["a", "b", "b", "c"]
    # a: tp 1, fp 0, fn 1 -> 2/3;  b: tp 1, fp 1 (item 2), fn 1 (item 4) -> 1/2;  c: tp 0 -> 0
    assert macro_f1(predicted, gold, labels=["a", "b", "c"]) == pytest.approx((2 / 3 + 0.5 + 0) / 3)
    assert macro_f1(["a", None], ["a", "b"], labels=["a", "b"]) == pytest.approx((1.0 + 0.0) / 2)


def test_report_metrics_by_hand():
    answers = [answer(), answer(priority="high"), "not json", answer(category="billing/double_charge")]
    report = score_answers(answers, [GOLD] * 4, n_boot=200)
    m = report.metrics
    assert m["json_valid"] == 0.75 and m["schema_valid"] == 0.75
    assert m["exact_match"] == 0.25
    assert m["category_accuracy"] == 0.5 and m["priority_accuracy"] == 0.5 and m["product_accuracy"] == 0.75
    for key, (low, high) in report.intervals.items():
        assert low <= m[key] <= high, key


def test_bootstrap_interval_covers_the_true_value_at_about_the_nominal_rate():
    true_p, n, trials, covered = 0.7, 200, 200, 0
    rng = random.Random(1)
    for trial in range(trials):
        outcomes = [rng.random() < true_p for _ in range(n)]
        low, high = bootstrap_ci(lambda idx: sum(outcomes[i] for i in idx) / len(idx), n, n_boot=400, seed=trial)
        covered += low <= true_p <= high
    assert 0.90 <= covered / trials <= 0.99, covered / trials


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="3 answers for 2 gold labels"):
        score_answers(["a", "b", "c"], [GOLD, GOLD])


def test_evaluate_scores_a_real_model_on_gold_rows():
    from course_lib import PROFILES, data_path
    from course_lib.evaluation import evaluate
    from course_lib.models import load_model_and_tokenizer
    from course_lib.tickets import load_tickets

    model, tokenizer = load_model_and_tokenizer(PROFILES["tiny"])
    rows = load_tickets(data_path("tickets", "gold_test.jsonl"))[:6]
    report = evaluate(model, tokenizer, rows, batch_size=6, max_new_tokens=48, n_boot=50)
    assert len(report.answers) == 6 and all(isinstance(a, str) and a for a in report.answers)
    assert report.metrics["json_valid"] == 0.0, "the base model answers in prose: it has never seen the task"
