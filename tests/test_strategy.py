"""The decision helper's rules and explanations, its widget, and the cost model against hand-computed values."""

import html
import math

import matplotlib
import pytest

from course_lib.strategy import (
    CONTEXT,
    FINE_TUNE,
    FLAG_KEYS,
    FLAGS,
    HYBRID,
    NOT_YET,
    CostOption,
    DecisionHelper,
    break_even,
    break_even_volume,
    plot_costs,
    recommend,
    request_cost,
    training_cost,
)

matplotlib.use("Agg")

GREENS = [f.key for f in FLAGS if f.green]
REDS = [f.key for f in FLAGS if not f.green]


def test_the_issue_flags_are_all_there():
    assert set(GREENS) == {"strict_output", "taxonomy", "domain_behaviour", "multilingual", "distillation"}
    assert set(REDS) == {"fast_changing_data", "few_labels", "fast_iteration"}


@pytest.mark.parametrize(
    ("ticked", "verdict"),
    [
        ([], CONTEXT),
        (["fast_iteration"], CONTEXT),
        (["strict_output"], FINE_TUNE),
        (["strict_output", "taxonomy", "domain_behaviour", "multilingual"], FINE_TUNE),  # the course's ticket task
        (["strict_output", "fast_changing_data"], HYBRID),
        (["distillation", "few_labels"], NOT_YET),
        (["taxonomy", "fast_changing_data", "fast_iteration"], NOT_YET),  # a moving task outranks the hybrid
        (FLAG_KEYS, NOT_YET),
    ],
)
def test_decision_rules(ticked, verdict):
    assert recommend(ticked).verdict == verdict


def test_explanation_lists_each_ticked_flag_with_its_direction():
    rec = recommend(["multilingual", "fast_changing_data"])
    assert len(rec.reasons) == 2
    assert rec.reasons[0].startswith("+ the same task in several languages")
    assert rec.reasons[1].startswith("- the facts it must know change often")
    assert "retrieve" in rec.advice
    assert rec.text().splitlines()[0] == f"Recommendation: {HYBRID}"
    assert "collect and curate" in recommend(["strict_output", "few_labels"]).advice
    assert "settle the task definition" in recommend(["strict_output", "fast_iteration"]).advice


def test_unknown_flag_is_named_with_the_valid_ones():
    with pytest.raises(ValueError, match="unknown flag.*json_output.*strict_output, taxonomy"):
        recommend(["json_output"])


def test_widget_builds_headlessly_and_explains_each_click():
    helper = DecisionHelper()
    assert f"Recommendation: {CONTEXT}" in helper.text and "no flag ticked" in helper.text
    helper.checkboxes["strict_output"].value = True
    assert f"Recommendation: {FINE_TUNE}" in helper.text and "+ strict structured output" in helper.text
    helper.checkboxes["few_labels"].value = True
    assert f"Recommendation: {NOT_YET}" in helper.text
    assert helper.ticked == ["strict_output", "few_labels"]
    helper.checkboxes["few_labels"].value = False
    assert f"Recommendation: {FINE_TUNE}" in helper.text
    assert helper.children[-1] is helper.report and helper.text in html.unescape(helper.report.value)


def test_widget_starts_from_the_flags_given():
    helper = DecisionHelper(ticked=["taxonomy", "fast_changing_data"])
    assert helper.recommendation().verdict == HYBRID and HYBRID.split("(")[0] in helper.text
    with pytest.raises(ValueError, match="unknown flag"):
        DecisionHelper(ticked=["nope"])


def test_request_and_training_cost_by_hand():
    # 1,000 prompt tokens at $2 per million + 100 answer tokens at $10 per million = $0.002 + $0.001
    assert request_cost(input_tokens=1000, output_tokens=100, input_per_million=2.0,
                        output_per_million=10.0) == pytest.approx(0.003)
    assert training_cost(gpu_hours=2, gpu_hour=3.0, other=500) == 506.0


def test_break_even_by_hand():
    prompting = CostOption("prompting", one_time=0.0, per_request=0.003)
    tuned = CostOption("fine-tuned", one_time=506.0, per_request=0.0005)
    # 0.003 n = 506 + 0.0005 n  =>  n = 506 / 0.0025 = 202,400
    n = break_even(prompting, tuned)
    assert n == pytest.approx(202_400)
    assert prompting.cost(n) == pytest.approx(tuned.cost(n))
    assert break_even(tuned, prompting) == pytest.approx(202_400)  # symmetric
    cheaper_and_free = CostOption("free", one_time=0.0, per_request=0.0001)
    assert break_even(cheaper_and_free, tuned) == math.inf  # the tuned option never catches up
    assert break_even(prompting, prompting) == 0.0
    assert break_even(prompting, CostOption("same price, fee", one_time=10.0, per_request=0.003)) == math.inf


def test_plot_marks_each_break_even():
    prompting = CostOption("prompting", one_time=0.0, per_request=0.003)
    rag = CostOption("RAG", one_time=0.0, per_request=0.004)
    tuned = CostOption("fine-tuned", one_time=506.0, per_request=0.0005)
    ax = plot_costs([prompting, rag, tuned], reference=tuned)
    labels = ax.get_legend_handles_labels()[1]
    assert labels[0] == r"prompting: \$3.00 per 1k requests; break-even at 202,400"
    assert labels[2] == r"fine-tuned: \$0.50 per 1k requests + \$506 once"
    assert "break-even at 144,571" in labels[1]  # 506 / (0.004 - 0.0005)
    assert ax.get_xlim()[1] == pytest.approx(2 * 202_400)
    marked = sorted(line.get_xdata()[0] for line in ax.lines if line.get_marker() == "o")
    assert marked == pytest.approx([506 / 0.0035, 202_400])


def test_fixed_monthly_costs_are_shared_among_a_months_requests():
    # serving $500 a month + a $600 retraining every 6 months = $600 a month; at 200,000 requests a month that is
    # $0.003 a request on top of $0.0005
    hosted = CostOption("self-hosted", one_time=506.0, per_request=0.0005, serving_per_month=500.0,
                        retraining=600.0, retrain_every_months=6)
    assert hosted.per_month == pytest.approx(600.0)
    assert hosted.per_request_at(200_000) == pytest.approx(0.0035)
    assert hosted.cost(400_000, volume=200_000) == pytest.approx(506 + 0.0035 * 400_000)
    with pytest.raises(ValueError, match=r"\$600.00 a month.*pass volume="):
        hosted.cost(1000)
    with pytest.raises(ValueError, match="retrain_every_months must be positive"):
        CostOption("bad", one_time=0.0, per_request=0.0, retraining=100.0, retrain_every_months=0)
    plain = CostOption("prompting", one_time=0.0, per_request=0.003)
    assert plain.per_month == 0.0 and plain.cost(1000) == plain.cost(1000, volume=5) == pytest.approx(3.0)


def test_break_even_with_fixed_costs_by_hand():
    prompting = CostOption("prompting", one_time=0.0, per_request=0.005)
    hosted = CostOption("self-hosted", one_time=500.0, per_request=0.0, serving_per_month=600.0,
                        retraining=1200.0, retrain_every_months=6)  # $600 + $200 = $800 a month
    # per month: 0.005 v = 800  =>  v = 160,000 requests a month before the fixed costs are paid for
    assert break_even_volume(prompting, hosted) == pytest.approx(160_000)
    assert break_even_volume(hosted, prompting) == pytest.approx(160_000)  # symmetric
    # below it the self-hosted model never catches up; at 200,000 a month it costs 0.004 a request:
    # 0.005 n = 500 + 0.004 n  =>  n = 500,000 requests (2.5 months)
    assert break_even(prompting, hosted, volume=100_000) == math.inf
    assert break_even(prompting, hosted, volume=200_000) == pytest.approx(500_000)
    assert prompting.cost(500_000, volume=200_000) == pytest.approx(hosted.cost(500_000, volume=200_000))
    # retraining alone, without serving, moves a hosted fine-tuned model's break-even later
    tuned = CostOption("fine-tuned", one_time=506.0, per_request=0.0005)
    retrained = CostOption("fine-tuned, retrained", one_time=506.0, per_request=0.0005, retraining=506.0,
                           retrain_every_months=6)
    slow = CostOption("prompting", one_time=0.0, per_request=0.003)
    # at 50,000 a month: 506 / 6 / 50,000 = 0.0016867 a request more; 506 / (0.0025 - 0.0016867) = 622,131
    assert break_even(slow, retrained, volume=50_000) == pytest.approx(506 / (0.0025 - 506 / 6 / 50_000))
    assert break_even(slow, retrained, volume=50_000) > break_even(slow, tuned) == pytest.approx(202_400)
    with pytest.raises(ValueError, match="pass volume="):
        break_even(slow, retrained)
    assert break_even_volume(slow, CostOption("same", one_time=0.0, per_request=0.003)) == 0.0
    assert break_even_volume(tuned, CostOption("dearer, fixed", one_time=0.0, per_request=0.001,
                                               serving_per_month=1.0)) == math.inf


def test_plot_with_fixed_costs_needs_and_uses_the_volume():
    prompting = CostOption("prompting", one_time=0.0, per_request=0.005)
    hosted = CostOption("self-hosted", one_time=500.0, per_request=0.0, serving_per_month=800.0)
    ax = plot_costs([prompting, hosted], reference=hosted, volume=200_000)
    labels = ax.get_legend_handles_labels()[1]
    assert labels[1] == r"self-hosted: \$4.00 per 1k requests (\$800 a month of it) + \$500 once"
    assert "break-even at 500,000" in labels[0]
    with pytest.raises(ValueError, match="pass volume="):
        plot_costs([prompting, hosted], reference=hosted)


def test_strict_output_flag_credits_constrained_decoding_with_the_syntax():
    why = next(f.why for f in FLAGS if f.key == "strict_output")
    assert "constrained decoding" in why and "content" in why


def test_break_even_with_fixed_costs_on_both_sides_has_the_closed_form():
    # each per-request price at volume v carries its option's monthly costs / v; then the one-time formula applies:
    # n = (one_time_b - one_time_a) / ((per_request_a + per_month_a / v) - (per_request_b + per_month_b / v))
    a = CostOption("hosted, retrained", one_time=200.0, per_request=0.002, retraining=300.0, retrain_every_months=3)
    b = CostOption("self-hosted", one_time=900.0, per_request=0.0001, serving_per_month=400.0)
    v = 400_000
    pa, pb = 0.002 + 100.0 / v, 0.0001 + 400.0 / v  # 0.00225 and 0.0011
    assert break_even(a, b, volume=v) == pytest.approx((900.0 - 200.0) / (pa - pb))  # 608,696 requests
    n = break_even(a, b, volume=v)
    assert a.cost(n, volume=v) == pytest.approx(b.cost(n, volume=v))
    # the volume at which the monthly bills are equal: 0.002 v + 100 = 0.0001 v + 400  =>  v = 300 / 0.0019
    assert break_even_volume(a, b) == pytest.approx(300.0 / 0.0019)
    assert break_even(a, b, volume=100_000) == math.inf  # below that volume b's fixed costs are never paid back
