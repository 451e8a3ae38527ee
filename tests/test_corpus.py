"""The tiny model's corpus: seeded, covering every ability, with held-out splits that never leak into training."""

import re

import pytest

from course_lib import tickets
from course_lib.chat import BOS, EOS, render_chat
from course_lib.datafiles import tickets as ticket_generator
from course_lib.tinymodel import corpus, world


@pytest.fixture(scope="module")
def docs():
    return corpus.build_corpus(scale=40, seed=0)


def test_corpus_is_seeded(docs):
    assert corpus.build_corpus(scale=2, seed=0) == corpus.build_corpus(scale=2, seed=0)
    assert corpus.build_corpus(scale=2, seed=0) != corpus.build_corpus(scale=2, seed=1)
    assert all(d.startswith(BOS) for d in docs)


def test_corpus_covers_every_ability(docs):
    text = "\n".join(docs)
    assert "The capital of France is Paris." in text
    assert re.search(r"\d\d \+ \d\d = \d+\.", text)
    assert corpus.REFUSAL_MARKER in text
    assert any(help_text in text for _, help_text in world.BENIGN_REQUESTS)
    assert "Turn this into JSON" in text or "Convert to JSON" in text
    assert "Agent: " in text or "The agent replied: " in text or "Thanks for getting in touch." in text
    assert "Hello! How can I help you today?" in text or "You're welcome" in text


def test_corpus_never_shows_the_ticket_task(docs):
    text = "\n".join(docs)
    assert tickets.SYSTEM_PROMPT not in text
    for key in ('"category"', '"priority"', '"sentiment"', '"order_id"'):
        assert key not in text
    shipped = sorted({t.message for split in ticket_generator.build_splits().values() for t in split})
    for message in shipped:  # a whole shipped message never appears as a customer's turn or log entry
        assert f"user\n{message}{EOS}" not in text and f": {message}\n" not in text, message


def test_heldout_splits_are_disjoint_from_training():
    train_pairs, test_pairs = set(corpus.sum_pairs("train")), set(corpus.sum_pairs("test"))
    assert not train_pairs & test_pairs and len(train_pairs | test_pairs) == 90 * 90
    assert 0.05 < len(test_pairs) / 8100 < 0.15
    train_qa = {q for q, _, _ in corpus.fact_qa("train")}
    assert not train_qa & {q for q, _, _ in corpus.fact_qa("test")}
    for unsafe in (True, False):
        train = {q for q, _ in corpus.requests("train", unsafe=unsafe)}
        assert not train & {q for q, _ in corpus.requests("test", unsafe=unsafe)}


def test_heldout_items_never_appear_in_the_corpus(docs):
    text = "\n".join(docs)
    items = corpus.probe_items()
    for item in items["fact_qa"] + items["refusal_unsafe"] + items["compliance_benign"]:
        assert f"user\n{item.question}{EOS}" not in text, item.question
    sums_in_text = (set(re.findall(r"(\d\d) \+ (\d\d) = ", text))
                    | set(re.findall(r"had (\d\d) \w+, and \w+ gave (\d\d)", text)))
    assert not {(int(a), int(b)) for a, b in sums_in_text} & set(corpus.sum_pairs("test"))


def test_every_fact_is_taught(docs):
    text = "\n".join(docs)
    assert all(f"The capital of {c} is {cap}." in text for c, cap, _, _ in world.COUNTRIES[:10])
    for item in corpus.probe_items()["fact_qa"]:
        assert item.expected in text


def test_render_chat_rejects_bad_messages():
    with pytest.raises(ValueError, match="role 'robot'"):
        render_chat([{"role": "robot", "content": "hi"}])
    with pytest.raises(ValueError, match="message 0"):
        render_chat([{"role": "user", "content": None}])


def test_generation_prompt_is_a_prefix_of_the_training_text():
    messages = [{"role": "user", "content": "What is 12 + 30?"}]
    prompt = render_chat(messages, add_generation_prompt=True)
    full = render_chat(messages + [{"role": "assistant", "content": "12 + 30 = 42."}])
    assert full.startswith(prompt) and full == prompt + "12 + 30 = 42." + EOS + "\n"
