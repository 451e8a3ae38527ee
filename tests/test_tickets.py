"""The support-ticket task: schema, validator, generator and the shipped JSONL files."""

import json
import random

import pytest

from course_lib import tickets
from course_lib.datafiles import tickets as ticket_generator
from course_lib.paths import data_path

GOOD = {
    "category": "shipping/damaged_item",
    "priority": "high",
    "product": "Nimbus Earbuds",
    "sentiment": "negative",
    "order_id": "ORD-482913",
    "summary": "The Nimbus Earbuds arrived damaged.",
}


def test_shipped_files_are_valid_and_disjoint():
    gold = tickets.load_tickets(data_path("tickets", "gold_test.jsonl"))
    dev = tickets.load_tickets(data_path("tickets", "dev.jsonl"))
    assert 300 <= len(gold) <= 500 and len(dev) > 0
    assert not {r["messages"][1]["content"] for r in gold} & {r["messages"][1]["content"] for r in dev}
    for row in gold:
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["system", "user", "assistant"]
        answer = row["messages"][-1]["content"]
        assert list(json.loads(answer)) == list(tickets.KEY_ORDER)
        assert answer == tickets.format_answer(json.loads(answer))  # compact, fixed key order


def test_every_label_value_occurs_in_the_gold_set():
    labels = [json.loads(r["messages"][-1]["content"])
              for r in tickets.load_tickets(data_path("tickets", "gold_test.jsonl"))]
    assert {lab["category"] for lab in labels} == set(tickets.CATEGORIES)
    assert {lab["priority"] for lab in labels} == set(tickets.PRIORITIES)
    assert {lab["sentiment"] for lab in labels} == set(tickets.SENTIMENTS)
    assert {lab["product"] for lab in labels} == set(tickets.PRODUCTS)
    assert any(lab["order_id"] is None for lab in labels) and any(lab["order_id"] for lab in labels)
    languages = [r["language"] for r in tickets.load_tickets(data_path("tickets", "gold_test.jsonl"))]
    assert 0.05 < 1 - languages.count("en") / len(languages) < 0.25


def test_generator_is_deterministic_and_varied():
    a = ticket_generator.generate_tickets(50, seed=7, prefix="x")
    b = ticket_generator.generate_tickets(50, seed=7, prefix="x")
    c = ticket_generator.generate_tickets(50, seed=8, prefix="x")
    assert [t.message for t in a] == [t.message for t in b]
    assert [t.message for t in a] != [t.message for t in c]
    lengths = [len(t.message) for t in a]
    assert max(lengths) > 2 * min(lengths)


def test_labels_follow_the_priority_rules():
    for t in ticket_generator.generate_tickets(300, seed=11, prefix="r"):
        category, priority = t.label["category"], t.label["priority"]
        assert priority == tickets.decide_priority(category, hazard=t.hazard, deadline=t.deadline, no_rush=t.no_rush)
        if t.hazard:
            assert priority == "urgent"
        if t.label["order_id"]:
            assert t.label["order_id"] in t.message  # the id is copied, never invented
        if t.language == "en" and t.label["sentiment"] == "neutral":
            tone = ticket_generator.TONE["en"]["negative"] + ticket_generator.TONE["en"]["positive"]
            assert not any(phrase.lower() in t.message.lower() for phrase in tone)


def test_priority_rules():
    assert tickets.decide_priority("billing/invoice_request", hazard=False, deadline=False, no_rush=False) == "low"
    assert tickets.decide_priority("billing/invoice_request", hazard=False, deadline=True, no_rush=False) == "medium"
    assert tickets.decide_priority("technical/app_crash", hazard=False, deadline=True, no_rush=False) == "urgent"
    assert tickets.decide_priority("shipping/late_delivery", hazard=False, deadline=False, no_rush=True) == "low"
    assert tickets.decide_priority("account/update_details", hazard=True, deadline=False, no_rush=False) == "urgent"


def test_validator_accepts_a_good_answer():
    assert tickets.validate_ticket(GOOD) == []
    assert tickets.validate_ticket({**GOOD, "order_id": None}) == []
    assert tickets.is_valid_answer(tickets.format_answer(GOOD))


@pytest.mark.parametrize(
    "change, field",
    [
        ({"category": "billing"}, "category"),
        ({"priority": "critical"}, "priority"),
        ({"product": "Nimbus"}, "product"),
        ({"sentiment": "angry"}, "sentiment"),
        ({"order_id": "482913"}, "order_id"),
        ({"order_id": 482913}, "order_id"),
        ({"summary": ""}, "summary"),
        ({"summary": "x" * 200}, "summary"),
        ({"extra": 1}, "extra"),
    ],
)
def test_validator_names_the_wrong_field(change, field):
    problems = tickets.validate_ticket({**GOOD, **change})
    assert len(problems) == 1 and repr(field) in problems[0]


def test_validator_reports_missing_fields_and_non_objects():
    problems = tickets.validate_ticket({k: v for k, v in GOOD.items() if k != "summary"})
    assert problems == ["field 'summary' is missing"]
    assert tickets.validate_ticket(["not", "an", "object"])
    data, problems = tickets.parse_answer('{"category": ')
    assert data is None and "not valid JSON" in problems[0]


def test_validator_agrees_with_the_json_schema():
    import jsonschema
    validator = jsonschema.Draft202012Validator(tickets.TICKET_SCHEMA)
    rng = random.Random(0)
    candidates = [GOOD, {**GOOD, "order_id": None}]
    mutations = [("category", "billing"), ("priority", "p1"), ("order_id", "ORD-12"), ("summary", ""), ("extra", 1)]
    for _ in range(200):
        key, value = rng.choice(mutations)
        candidates.append({**GOOD, key: value})
    candidates += [t.label for t in ticket_generator.generate_tickets(100, seed=5, prefix="s")]
    for candidate in candidates:
        assert (tickets.validate_ticket(candidate) == []) == validator.is_valid(candidate), candidate


def test_load_tickets_names_file_and_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    good_row = ticket_generator.to_row(ticket_generator.generate_tickets(1, seed=1, prefix="t")[0])
    bad_row = json.loads(json.dumps(good_row))
    bad_row["messages"][-1]["content"] = json.dumps({**GOOD, "priority": "p1"})
    path.write_text(json.dumps(good_row) + "\n" + json.dumps(bad_row) + "\n", encoding="utf-8")
    with pytest.raises(tickets.TicketError, match=r"bad\.jsonl, line 2.*'priority'"):
        tickets.load_tickets(path)
    with pytest.raises(tickets.TicketError, match="python -m course_lib.datafiles"):
        tickets.load_tickets(tmp_path / "missing.jsonl")
