"""Language, length and off-task filters."""

import pytest

from course_lib.curation.filters import detect_language, language_filter, length_filter
from course_lib.curation.pipeline import task_rules
from course_lib.curation.records import Record


@pytest.mark.parametrize(("text", "lang"), [
    ("I was charged twice for the phone and I want my money back.", "en"),
    ("Quiero un reembolso por mi teléfono, no funciona.", "es"),
    ("Je voudrais être remboursé pour mon téléphone, il ne marche pas.", "fr"),
    ("Ich möchte eine Rückerstattung für mein Telefon, es ist kaputt.", "de"),
    ("Vorrei un rimborso per il mio telefono, non funziona.", "it"),
    ("O meu telefone chegou partido, a caixa estava amassada.", "pt"),
    ("Mijn telefoon is nog steeds niet aangekomen, het is al een week te laat.", "nl"),
    ("Aurora!", "unknown"),
])
def test_detect_language(text, lang):
    assert detect_language(text) == lang


def row(line, user, answer="{}"):
    return Record(line, {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]})


def test_language_filter_keeps_allowed_and_unknown():
    records = [row(1, "I want a refund for the phone."),
               row(2, "Ik wil mijn geld terug voor de telefoon, het werkt niet."), row(3, "ok")]
    kept, removed = language_filter(records, {"en", "es"})
    assert [r.line for r in kept] == [1, 3]
    assert removed[0][1] == "written in 'nl', not one of en, es"


def test_length_filter_bounds():
    kept, removed = length_filter([row(1, "x" * 10), row(2, "x" * 100), row(3, "")], min_chars=1, max_chars=50)
    assert [r.line for r in kept] == [1] and [r.line for r, _ in removed] == [2, 3]


def test_ticket_rules_tell_off_task_from_a_cut_off_answer():
    rules = task_rules("tickets")
    poem = row(1, "Write a poem about rain.", "Soft rain falls...")
    cut = row(2, "My phone broke.", '{"category":"shipping/dam')
    assert "not the ticket task" in rules.on_task(poem) and rules.on_task(cut) is None
    assert rules.answer_check(cut).startswith("invalid ticket answer: not valid JSON")
