"""The shipped data files match their generators, and curation meets its targets on the planted defects."""

import json

import pytest

from course_lib import data_path
from course_lib.curation.pipeline import curate, task_rules
from course_lib.curation.score import load_defects, redaction_recall, score
from course_lib.datafiles.rawpool import PLANTED
from course_lib.datafiles.shipped import differences, write_all
from course_lib.preferences import PreferenceError, check_preference_row

TICKETS = data_path("tickets")


def test_regenerating_gives_identical_files(tmp_path):
    write_all(tmp_path)
    assert differences(data_path(), tmp_path) == [], "run `python -m course_lib.datafiles` and commit the result"


def test_planted_defects_match_the_declared_proportions():
    defects = load_defects(TICKETS / "raw_pool_defects.jsonl")
    counts = {kind: sum(d["kind"] == kind for d in defects) for kind in PLANTED}
    assert counts == PLANTED
    lines = (TICKETS / "raw_pool.jsonl").read_text(encoding="utf-8").splitlines()
    assert 4900 <= len(lines) <= 5100
    for d in defects:
        if "source_line" in d:
            assert d["source_line"] < d["line"], "copies come after the row they copy"


@pytest.fixture(scope="module")
def curated():
    rules = task_rules("tickets")
    return curate(TICKETS / "raw_pool.jsonl", rules=rules, max_chars=1500, protect=[TICKETS / "gold_test.jsonl"])


def test_curation_meets_its_targets_on_the_raw_pool(curated):
    table = score(curated, load_defects(TICKETS / "raw_pool_defects.jsonl"))
    assert table["exact_duplicate"]["recall"] >= 0.95
    assert table["near_duplicate"]["recall"] >= 0.85
    flagged_dupes = table["exact_duplicate"]["flagged"] + table["near_duplicate"]["flagged"]
    caught_dupes = table["exact_duplicate"]["caught"] + table["near_duplicate"]["caught"]
    assert 1 - caught_dupes / flagged_dupes <= 0.05, "at most 5% of flagged duplicates are false positives"
    for kind in ("malformed", "truncated_answer", "overlong", "off_task", "test_overlap"):
        assert table[kind]["recall"] >= 0.95, (kind, table[kind])


def test_redaction_removes_planted_emails_phones_and_cards():
    defects = load_defects(TICKETS / "raw_pool_defects.jsonl")
    rows = {}
    for i, line in enumerate((TICKETS / "raw_pool.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows[i] = json.loads(line)
        except json.JSONDecodeError:
            pass
    recall = redaction_recall(defects, rows)
    for kind in ("EMAIL", "PHONE", "CARD"):
        assert recall[kind] >= 0.98, (kind, recall)


def test_curated_training_set_is_clean_and_disjoint_from_test_data():
    rows = [json.loads(line) for line in (TICKETS / "train_curated.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 1000
    gold = {json.loads(line)["messages"][1]["content"]
            for line in (TICKETS / "gold_test.jsonl").read_text(encoding="utf-8").splitlines()}
    assert not gold & {r["messages"][1]["content"] for r in rows}
    from course_lib.tickets import is_valid_answer
    assert all(is_valid_answer(r["messages"][-1]["content"]) for r in rows)


@pytest.mark.parametrize(("row", "message"), [
    ({"prompt": "hi", "chosen": "a"}, "field 'rejected' is missing"),
    ({"prompt": " ", "chosen": "a", "rejected": "b"}, "field 'prompt' is empty"),
    ({"prompt": "hi", "chosen": [{"role": "assistant", "content": "same"}],
      "rejected": [{"role": "assistant", "content": "same"}]},
     "'chosen' and 'rejected' are identical"),
])
def test_malformed_preference_rows_are_named(row, message):
    with pytest.raises(PreferenceError, match=f"preferences.jsonl, line 7: {message}"):
        check_preference_row(row, "preferences.jsonl, line 7")


def test_shipped_preferences_and_judgements_are_well_formed():
    for i, line in enumerate((TICKETS / "preferences.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        check_preference_row(json.loads(line), f"preferences.jsonl, line {i}")
    judgements = [json.loads(line) for line in (TICKETS / "judgements.jsonl").read_text(encoding="utf-8").splitlines()]
    assert {j["score"] for j in judgements} == {1, 2, 3, 4, 5}
    agree = sum(j["score"] == j["rubric_score"] for j in judgements) / len(judgements)
    assert 0.8 <= agree < 1.0, "raters mostly follow the rubric, with some noise"
