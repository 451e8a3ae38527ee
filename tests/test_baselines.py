"""Prompting baselines: prompt construction, BM25 retrieval, the context budget, and a run on the tiny model."""

import math

import pytest

from course_lib import PROFILES, data_path
from course_lib.baselines import (
    BM25,
    PromptTooLongError,
    Retriever,
    build_prompts,
    check_fits,
    context_length,
    few_shot_prompt,
    fixed_examples,
    max_shots,
    prompt_length,
    run_baseline,
    user_message,
    words,
)
from course_lib.evaluation import prompts_of, wilson_interval
from course_lib.tickets import SYSTEM_PROMPT, load_tickets


@pytest.fixture(scope="module")
def train():
    return load_tickets(data_path("tickets", "train_curated.jsonl"))


@pytest.fixture(scope="module")
def gold():
    return load_tickets(data_path("tickets", "gold_test.jsonl"))[:8]


@pytest.fixture(scope="module")
def tiny():
    from course_lib.models import load_model_and_tokenizer

    return load_model_and_tokenizer(PROFILES["tiny"])


def category(row):
    return row["messages"][-1]["content"].split('"category":"')[1].split('"')[0]


def test_zero_shot_prompt_is_what_the_rows_ask(gold):
    assert build_prompts(gold, method="zero_shot") == prompts_of(gold)
    assert few_shot_prompt("hi", system=None) == [{"role": "user", "content": "hi"}]


def test_few_shot_prompt_puts_examples_as_turns_between_system_and_question(train, gold):
    prompt = build_prompts(gold[:1], method="few_shot", k=3, train_rows=train)[0]
    assert [m["role"] for m in prompt] == ["system", "user", "assistant", "user", "assistant", "user", "assistant",
                                           "user"]
    assert prompt[0]["content"] == SYSTEM_PROMPT and prompt[-1]["content"] == user_message(gold[0])
    examples = fixed_examples(train, k=3)
    assert prompt[1:-1:2] == [{"role": "user", "content": user_message(r)} for r in examples]
    assert [m["content"] for m in prompt[2:-1:2]] == [r["messages"][-1]["content"] for r in examples]
    assert build_prompts(gold, method="few_shot", k=0, train_rows=train) == build_prompts(gold, method="zero_shot")
    from_retriever = build_prompts(gold[:1], method="few_shot", k=3, retriever=Retriever(train))[0]
    assert from_retriever == prompt, "fixed examples come from the retriever's rows when no train_rows are given"


def test_fixed_examples_take_one_group_after_another_and_are_reproducible(train):
    picked = fixed_examples(train, k=8)
    groups = [category(r).split("/")[0] for r in picked]
    assert groups == ["billing", "shipping", "technical", "account"] * 2
    assert picked == fixed_examples(train, k=8)
    assert picked != fixed_examples(train, k=8, seed=1)
    assert fixed_examples(train, k=0) == []
    with pytest.raises(ValueError, match="k=2000, but there are 1000 rows"):
        fixed_examples(train, k=2000)


def test_words_are_lowercase_runs_of_letters_and_digits_in_any_script():
    assert words("Mein Pulse Watch kam beschädigt an (ORD-760901)") == [
        "mein", "pulse", "watch", "kam", "beschädigt", "an", "ord", "760901"]


def test_bm25_by_hand():
    bm25 = BM25(["red apple", "green apple", "red car red"], k1=1.5, b=0.75)
    # "car": in 1 of 3 texts -> idf = ln(1 + (3 - 1 + 0.5) / (1 + 0.5)); text 2 has it once, length 3, mean length 7/3
    idf = math.log(1 + 2.5 / 1.5)
    expected = idf * 1 * 2.5 / (1 + 1.5 * (1 - 0.75 + 0.75 * 3 / (7 / 3)))
    assert bm25.scores("car") == pytest.approx([0.0, 0.0, expected])
    assert bm25.top("red apple", 3) == [0, 2, 1]
    assert bm25.scores("unknown words") == [0.0, 0.0, 0.0]
    assert bm25.top("unknown", 2) == [0, 1]  # ties go to the earlier text


def test_retrieval_finds_the_reworded_ticket_first(train, gold):
    retriever = Retriever(train)
    target = train[123]
    reworded = "hello! " + user_message(target).lower().replace(".", " ")  # another greeting, no punctuation
    assert retriever.similar(reworded, 1) == [target]
    prompt = build_prompts([{"messages": [{"role": "user", "content": reworded}]}], method="retrieval_few_shot", k=3,
                           retriever=retriever)[0]
    assert prompt[-3]["content"] == user_message(target), "the most similar example sits next to the question"
    assert prompt[-2]["content"] == target["messages"][-1]["content"]


def test_bad_method_or_missing_examples_say_what_to_pass(train, gold):
    with pytest.raises(ValueError,
                       match="method='rag' is not a baseline; use one of zero_shot, few_shot, retrieval_few_shot"):
        build_prompts(gold, method="rag", k=2, train_rows=train)
    with pytest.raises(ValueError, match="method='rag' is not a baseline"):
        build_prompts(gold, method="rag")  # even with no examples asked for
    with pytest.raises(ValueError, match="k=-1: the number of examples per prompt cannot be negative"):
        build_prompts(gold, method="few_shot", k=-1, train_rows=train)
    with pytest.raises(ValueError, match="needs labelled examples: pass train_rows"):
        build_prompts(gold, method="few_shot", k=2)


def test_check_fits_names_the_ticket_and_max_shots_finds_the_largest_k(tiny, train, gold):
    _, tokenizer = tiny
    lengths = {k: max(prompt_length(tokenizer, p)
                      for p in build_prompts(gold, method="few_shot", k=k, train_rows=train))
               for k in (1, 2, 3)}
    assert lengths[1] < lengths[2] < lengths[3]
    context = lengths[2] + 50  # room for 50 new tokens after the longest 2-shot prompt, not after a 3-shot one
    prompts = build_prompts(gold, method="few_shot", k=3, train_rows=train)
    with pytest.raises(PromptTooLongError,
                       match=rf"prompt \d \(gold-000\d\) is \d+ tokens; with 50 tokens for the answer "
                             rf"it needs \d+ positions, and the model has {context}. Use fewer examples"):
        check_fits(tokenizer, prompts, context=context, max_new_tokens=50, names=[r["id"] for r in gold])
    assert max_shots(tokenizer, gold, method="few_shot", context=context, k_max=5, max_new_tokens=50,
                     train_rows=train) == 2
    assert max_shots(tokenizer, gold, method="few_shot", context=lengths[1], k_max=5, max_new_tokens=50,
                     train_rows=train) == 0
    fits = check_fits(tokenizer, build_prompts(gold, method="zero_shot"), context=context, max_new_tokens=50)
    assert len(fits) == len(gold) and all(n < lengths[1] for n in fits)


def test_run_baseline_on_the_tiny_model(tiny, train, gold):
    model, tokenizer = tiny
    rows = gold[:4]
    assert context_length(model) == 512
    prompts = build_prompts(rows, method="retrieval_few_shot", k=1, train_rows=train)
    result = run_baseline(model, tokenizer, rows, prompts, name="retrieval", batch_size=4, max_new_tokens=24, n_boot=50)
    assert len(result.report.answers) == 4 and all(isinstance(a, str) for a in result.report.answers)
    assert result.seconds_per_request > 0 and result.batch_size == 4
    assert result.prompt_tokens == [prompt_length(tokenizer, p) for p in prompts]
    assert result.report.metrics["json_valid"] == 0.0, ("the tiny model has never seen the task; "
                                                         "one example does not teach it")
    low, high = wilson_interval(0, 4)  # a share of 4 items: its interval is Wilson's, wide, never of zero width
    assert result.report.intervals["json_valid"] == (low, high) and high > 0.4
    assert result.line().startswith("retrieval ") and f"json_valid 0.000 [{low:.3f}, {high:.3f}]" in result.line()
    assert result.line().endswith("ms/request (batch 4)")
    too_long = build_prompts(rows, method="few_shot", k=8, train_rows=train)
    with pytest.raises(PromptTooLongError, match=r"\(gold-0000\).*the model has 512"):
        run_baseline(model, tokenizer, rows, too_long, name="8-shot")
    with pytest.raises(ValueError, match="3 prompts for 4 rows"):
        run_baseline(model, tokenizer, rows, prompts[:3], name="short")
