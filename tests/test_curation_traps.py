"""Precision of near-duplicate detection and of redaction on the labelled trap sets (course_lib.curation.traps)."""

from course_lib.curation.dedup import near_duplicate_pairs
from course_lib.curation.pii import find_pii
from course_lib.curation.traps import near_duplicate_traps, pii_traps, score_pairs, score_pii, true_pairs


def test_the_trap_sets_are_seeded_and_labelled():
    assert near_duplicate_traps(seed=0) == near_duplicate_traps(seed=0)
    traps = near_duplicate_traps()
    assert {t.group for t in traps} == {"preamble", "math", "plain"} and len(true_pairs(traps)) == 30
    assert len(pii_traps()) == 640 and sum(bool(t.kinds) for t in pii_traps()) == 160


def test_near_duplicates_hold_90_percent_precision_at_the_default_threshold():
    traps = near_duplicate_traps()
    table = score_pairs(traps, near_duplicate_pairs([t.text for t in traps], threshold=0.7))
    assert table["all"]["precision"] >= 0.9 and table["all"]["recall"] >= 0.6, table
    assert table["math"]["precision"] >= 0.9 and table["preamble"]["precision"] >= 0.9, table


def test_without_the_boilerplate_discount_the_shared_preamble_ruins_precision():
    traps = near_duplicate_traps()
    table = score_pairs(traps, near_duplicate_pairs([t.text for t in traps], threshold=0.7, discount=False))
    assert table["preamble"]["precision"] < 0.1, table


def test_redaction_precision_on_look_alikes_of_personal_data():
    table = score_pii(pii_traps(), find_pii)
    assert table["precision"] >= 0.95 and table["recall"] >= 0.95, table
