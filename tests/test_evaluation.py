"""Task metrics against hand-computed values, intervals that cover the truth (Wilson, bootstrap), paired comparison."""

import json
import random

import pytest

from course_lib.evaluation import PER_ITEM_METRICS, bootstrap_ci, compare, macro_f1, rouge_l, score_answers, score_item

GOLD = {"category": "billing/refund_request", "priority": "medium", "product": "Orbit Laptop", "sentiment": "neutral",
        "order_id": None, "summary": "Customer requests a refund for the Orbit Laptop."}


def answer(**changes):
    return json.dumps({**GOLD, **changes})


def test_item_scores():
    assert score_item(answer(), GOLD).exact_match
    wrong = score_item(answer(priority="high"), GOLD)
    assert wrong.schema_valid and not wrong.exact_match
    assert wrong.fields["priority"] is False and wrong.fields["category"]
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


def test_rouge_l_by_hand():
    # words (lower-cased, punctuation dropped): prediction "the laptop arrived damaged" (4),
    # reference "the orbit laptop arrived broken" (5); longest common subsequence "the laptop arrived" (3)
    # precision 3/4, recall 3/5, F1 = 2 * 3 / (4 + 5) = 2/3
    assert rouge_l("The laptop arrived damaged.", "The Orbit Laptop arrived broken.") == pytest.approx(2 / 3)
    # a subsequence, not a substring: "customer ... refund ... laptop" in order (3 of 4 and 3 of 7 words)
    assert rouge_l("customer wants refund laptop", GOLD["summary"]) == pytest.approx(2 * 3 / (4 + 8))
    assert rouge_l(GOLD["summary"], GOLD["summary"]) == 1.0
    assert rouge_l("nothing in common", GOLD["summary"]) == 0.0


def test_item_summary_rouge_l():
    assert score_item(answer(), GOLD).summary_rouge_l == 1.0
    assert score_item(answer(summary="The laptop needs a refund."), GOLD).summary_rouge_l == pytest.approx(
        rouge_l("The laptop needs a refund.", GOLD["summary"]))
    assert score_item("not json", GOLD).summary_rouge_l == 0.0
    assert score_item(answer(summary=None), GOLD).summary_rouge_l == 0.0  # no summary string: nothing to match


def test_report_metrics_by_hand():
    answers = [answer(), answer(priority="high"), "not json", answer(category="billing/double_charge")]
    report = score_answers(answers, [GOLD] * 4, n_boot=200)
    m = report.metrics
    assert m["json_valid"] == 0.75 and m["schema_valid"] == 0.75
    assert m["exact_match"] == 0.25
    assert m["category_accuracy"] == 0.5 and m["priority_accuracy"] == 0.5 and m["product_accuracy"] == 0.75
    assert m["summary_rouge_l"] == 0.75  # three answers repeat the gold summary, one is not JSON
    for key, (low, high) in report.intervals.items():
        assert low <= m[key] <= high, key
    assert set(report.intervals) == set(m)


def test_bootstrap_interval_covers_the_true_value_at_about_the_nominal_rate():
    # 300 simulated data sets of 100 Bernoulli(0.7) outcomes: a 95% interval should hold 0.7 about 95% of the time
    true_p, n, trials, covered = 0.7, 100, 300, 0
    rng = random.Random(1)
    for trial in range(trials):
        outcomes = [rng.random() < true_p for _ in range(n)]
        low, high = bootstrap_ci(lambda idx, outcomes=outcomes: sum(outcomes[i] for i in idx) / len(idx), n,
                                 n_boot=200, seed=trial)
        covered += low <= true_p <= high
    assert 0.88 <= covered / trials <= 0.99, covered / trials


def test_bootstrap_is_reproducible_and_its_width_shrinks_with_more_items():
    def interval(n, seed):
        outcomes = [i % 2 == 0 for i in range(n)]
        return bootstrap_ci(lambda idx: sum(outcomes[i] for i in idx) / len(idx), n, n_boot=300, seed=seed)

    assert interval(50, seed=3) == interval(50, seed=3)
    (low_50, high_50), (low_800, high_800) = interval(50, seed=3), interval(800, seed=3)
    assert low_50 <= 0.5 <= high_50 and low_800 <= 0.5 <= high_800
    assert high_800 - low_800 < (high_50 - low_50) / 2  # 16 times the items: about a quarter of the width
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci(lambda idx: 0.0, 0)


def test_paired_comparison_by_hand():
    golds = [dict(GOLD, order_id=f"ORD-00000{i}") for i in range(5)]
    right = [json.dumps(g) for g in golds]
    # system A: items 0-3 right, item 4 wrong priority;  system B: items 0-1 right, item 2 not JSON, 3-4 wrong category
    a = score_answers(right[:4] + [json.dumps(dict(golds[4], priority="low"))], golds, n_boot=100)
    b = score_answers(right[:2] + ["I think it is billing."] + [json.dumps(dict(g, category="billing/double_charge"))
                                                                 for g in golds[3:]], golds, n_boot=100)
    result = compare(a, b, metric="exact_match", n_boot=500)
    assert result.differences == [0.0, 0.0, 1.0, 1.0, 0.0]
    assert (result.a, result.b) == (0.8, 0.4) and result.difference == pytest.approx(0.4)
    assert (result.a_wins, result.b_wins, result.ties) == (2, 0, 3)
    # every resample of these differences has a mean between 0 and 1, and 0.4 is the observed mean
    low, high = result.interval
    assert 0.0 <= low <= 0.4 <= high <= 1.0
    assert "A better on 2, B on 0, 3 ties" in result.line()
    json_valid = compare(a, b, metric="json_valid", n_boot=100)
    assert json_valid.differences == [0, 0, 1, 0, 0] and (json_valid.a_wins, json_valid.ties) == (1, 4)
    category = compare(b, a, metric="category_accuracy", n_boot=100)
    assert category.differences == [0, 0, -1, -1, -1] and (category.a_wins, category.b_wins) == (0, 3)


def test_paired_interval_is_narrower_than_comparing_two_separate_intervals():
    # two systems that differ on few items but share most errors: pairing removes the items' shared difficulty
    rng = random.Random(7)
    golds = [dict(GOLD, order_id=f"ORD-{i:06d}") for i in range(300)]
    hard = [rng.random() < 0.5 for _ in golds]
    a_answers = [json.dumps(dict(g, priority="low")) if h else json.dumps(g) for g, h in zip(golds, hard, strict=True)]
    b_answers = [json.dumps(dict(g, priority="low")) if h or i % 10 == 0 else json.dumps(g)
                 for i, (g, h) in enumerate(zip(golds, hard, strict=True))]
    a, b = score_answers(a_answers, golds, n_boot=200), score_answers(b_answers, golds, n_boot=200)
    result = compare(a, b, metric="exact_match", n_boot=500)
    assert result.b_wins == 0 and result.a_wins > 0
    assert result.interval[0] > 0, "A is never worse, so the paired interval excludes zero"
    a_low, b_high = a.intervals["exact_match"][0], b.intervals["exact_match"][1]
    assert a_low < b_high, "the two unpaired intervals overlap, so on their own they could not tell A and B apart"


def test_comparison_refuses_what_it_cannot_pair():
    one = score_answers([answer()], [GOLD], n_boot=10)
    two = score_answers([answer(), answer()], [GOLD, GOLD], n_boot=10)
    with pytest.raises(ValueError, match="same items"):
        compare(one, two)
    other = score_answers([answer()], [dict(GOLD, priority="high")], n_boot=10)
    with pytest.raises(ValueError, match="item 0 has different gold labels"):
        compare(one, other)
    with pytest.raises(ValueError, match="category_macro_f1.*whole set"):
        compare(one, one, metric="category_macro_f1")
    assert set(PER_ITEM_METRICS) <= set(one.metrics)


def test_mismatched_lengths_are_an_error():
    with pytest.raises(ValueError, match="3 answers for 2 gold labels"):
        score_answers(["a", "b", "c"], [GOLD, GOLD])
    with pytest.raises(ValueError, match="no answers to score"):
        score_answers([], [])


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


def test_wilson_interval_matches_scipy_and_stays_open_at_0_and_100_percent():
    from scipy.stats import binomtest

    from course_lib.evaluation import wilson_interval

    for successes, n in [(0, 200), (1, 200), (57, 100), (199, 200), (200, 200), (3, 7)]:
        mine = wilson_interval(successes, n)
        theirs = binomtest(successes, n).proportion_ci(confidence_level=0.95, method="wilson")
        # both are a few float64 operations on numbers below 1: they agree to well under 1e-12
        assert abs(mine[0] - theirs.low) < 1e-12 and abs(mine[1] - theirs.high) < 1e-12, (successes, n)
    low, high = wilson_interval(0, 200)
    # 0 of 200 is not a certainty: the upper bound is near the "rule of three", 3 / 200 = 0.015
    assert low == 0 and 3 / 200 < high < 0.02
    assert wilson_interval(200, 200)[0] < 1
    with pytest.raises(ValueError, match="between 0 and n"):
        wilson_interval(201, 200)


def test_wilson_interval_covers_a_rare_rate_where_the_percentile_bootstrap_does_not():
    # 400 data sets of 100 outcomes with a true rate of 1%: a third of them have no success at all, and there the
    # percentile bootstrap's interval is [0, 0], which misses the truth; Wilson's holds it about 95% of the time
    from course_lib.evaluation import wilson_interval

    rng = random.Random(0)
    n, p, trials = 100, 0.01, 400
    wilson_hits = bootstrap_hits = 0
    for _ in range(trials):
        outcomes = [1 if rng.random() < p else 0 for _ in range(n)]
        low, high = wilson_interval(sum(outcomes), n)
        wilson_hits += low <= p <= high
        low, high = bootstrap_ci(lambda idx, outcomes=outcomes: sum(outcomes[i] for i in idx) / len(idx), n,
                                 n_boot=200, seed=1)
        bootstrap_hits += low <= p <= high
    assert wilson_hits / trials > 0.9 > bootstrap_hits / trials


def test_score_answers_gives_shares_a_wilson_interval():
    from course_lib.evaluation import PROPORTION_METRICS, wilson_interval

    report = score_answers(["not json"] * 40, [GOLD] * 40)
    for metric in PROPORTION_METRICS:
        assert report.intervals[metric] == wilson_interval(0, 40), metric
    assert report.intervals["json_valid"][1] > 0.05
