"""The LLM judge: reading replies, pairwise position swap, calibration figures, and both backends.

The endpoint backend is tested against `transformers serve` running the tiny model on 127.0.0.1 (started once
for this file), and against a small server that fails on purpose (tests/chat_servers.py).
"""

import json
import math
import re
import time

import pytest

from course_lib import PROFILES, data_path
from course_lib.judging import (
    UNPARSED,
    EndpointError,
    EndpointJudge,
    Judge,
    LocalJudge,
    PairJudgement,
    agreement,
    calibrate,
    cohen_kappa,
    judge_pairs,
    judge_scores,
    judgement_pairs,
    load_judgements,
    pairwise_messages,
    parse_score,
    parse_winner,
    position_consistency,
    rubric_messages,
)

from chat_servers import HANG_SECONDS, REPLY, ErrorServer, RedirectServer, TransformersServe, free_port

KEY = "made-up-test-key-4711"  # a made-up key: it must never show up in a message or a repr
TINY = data_path("models", "tiny-chat")


class ScriptedJudge(Judge):
    """A judge whose reply is a function of the conversation; records what it was asked."""

    def __init__(self, reply):
        self.reply, self.asked = reply, []

    def complete(self, messages):
        self.asked.append(messages)
        return self.reply(messages)


def shown_answers(messages):
    """(Answer 1, Answer 2) of a pairwise prompt."""
    user = messages[-1]["content"]
    first = user.split("Answer 1:\n", 1)[1].split("\n\nAnswer 2:\n", 1)[0]
    return first, user.split("\n\nAnswer 2:\n", 1)[1]


@pytest.fixture(scope="module")
def rows():
    return load_judgements()


@pytest.fixture(scope="module")
def tiny():
    from course_lib.models import load_model_and_tokenizer

    return load_model_and_tokenizer(PROFILES["tiny"])


@pytest.fixture(scope="module")
def served_tiny_model():
    server = TransformersServe(TINY)
    print(f"\ntransformers serve started in {server.startup_seconds:.1f} s")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def error_server():
    server = ErrorServer()
    yield server
    server.close()


# ---------------------------------------------------------------------------------------------------------
# Prompts and parsing


def test_prompts_carry_the_rubric_the_message_and_the_answers_in_order(rows):
    rubric = rubric_messages("my laptop broke", '{"category": "x"}')
    assert [m["role"] for m in rubric] == ["system", "user"]
    assert "5: every field right" in rubric[0]["content"] and '{"score": N}' in rubric[0]["content"]
    assert "my laptop broke" in rubric[1]["content"] and '{"category": "x"}' in rubric[1]["content"]
    pair = pairwise_messages("msg", "FIRST", "SECOND")
    assert shown_answers(pair) == ("FIRST", "SECOND") and '{"winner": "tie"}' in pair[0]["content"]
    assert "priority rules" not in rubric[0]["content"].lower()
    assert "a deadline raises it" not in rubric[0]["content"]
    with_rules = rubric_messages("m", "a", task_rules=True)[0]["content"]
    assert "stated deadline raises it one level" in with_rules


def test_every_judgement_prompt_fits_the_tiny_models_context(rows, tiny):
    from course_lib.chat import prompt_text

    model, tokenizer = tiny
    longest = 0
    for pair in judgement_pairs(rows):
        for messages in (pairwise_messages(pair["message"], pair["a"], pair["b"]),
                         rubric_messages(pair["message"], pair["a"])):
            longest = max(longest, len(tokenizer(prompt_text(tokenizer, messages),
                                                 add_special_tokens=False)["input_ids"]))
    assert longest + LocalJudge(model, tokenizer).max_new_tokens <= model.config.max_position_embeddings, longest


@pytest.mark.parametrize("reply, expected", [
    ('{"score": 4}', 4),
    ('  {"score":1}\n', 1),
    ('{"score": 5, "reason": "every field is right"}', 5),  # extra keys are allowed
    ('```json\n{"score": 3}\n```', 3),  # one object alone in a code fence
    ('```\n{"score": 2}\n```', 2),
    ('```{"score": 2}```', 2),
    ("", UNPARSED),
    ("   ", UNPARSED),
    (None, UNPARSED),
    ("4", UNPARSED),  # a bare number is not the asked object
    ("Score: 4", UNPARSED),
    ('I would say {"score": 4}', UNPARSED),  # text around the object
    ('{"score": 4}\nHope this helps!', UNPARSED),
    ('```json\n{"score": 3}\n```\nThe summary is vague.', UNPARSED),
    ('{"score": 4} {"score": 5}', UNPARSED),  # two objects
    ('{"score": 4, "score": 2}', UNPARSED),  # a repeated key is ambiguous
    ('{"score": 6}', UNPARSED),  # out of range
    ('{"score": 0}', UNPARSED),
    ('{"score": -1}', UNPARSED),
    ('{"score": 4.5}', UNPARSED),  # not a whole number
    ('{"score": "4"}', UNPARSED),  # a string, not a number
    ('{"score": true}', UNPARSED),  # JSON true is not the number 1
    ('{"score": null}', UNPARSED),
    ('{"grade": 4}', UNPARSED),  # wrong key
    ("[4]", UNPARSED),
    ('{"score": 4', UNPARSED),  # cut off
    ("{'score': 4}", UNPARSED),  # single quotes are not JSON
])
def test_parse_score_reads_one_json_object_or_records_unparsed(reply, expected):
    assert parse_score(reply) == expected


@pytest.mark.parametrize("reply, expected", [
    ('{"winner": 1}', "1"), ('{"winner": 2}', "2"), ('{"winner": "2"}', "2"), ('{"winner": "tie"}', "tie"),
    ('{"winner": "Tie"}', "tie"), ('```json\n{"winner": 1, "why": "valid JSON"}\n```', "1"),
    ('{"winner": 3}', UNPARSED), ('{"winner": "A"}', UNPARSED), ('{"winner": true}', UNPARSED),
    ('{"winner": 1.0}', UNPARSED), ("Answer 1 is better.", UNPARSED), ("", UNPARSED), ('{"score": 1}', UNPARSED),
])
def test_parse_winner(reply, expected):
    assert parse_winner(reply) == expected


# ---------------------------------------------------------------------------------------------------------
# Pairwise with position swap


PAIRS = [{"id": "p0", "message": "m0", "a": '{"ok": 1}', "b": "broken {"},
         {"id": "p1", "message": "m1", "a": "prose", "b": '{"ok": 2}'}]


def prefers_json(messages):
    first, second = shown_answers(messages)
    valid = []
    for text in (first, second):
        try:
            valid.append(isinstance(json.loads(text), dict))
        except json.JSONDecodeError:
            valid.append(False)
    return '{"winner": "tie"}' if valid[0] == valid[1] else json.dumps({"winner": 1 if valid[0] else 2})


def test_a_win_counts_only_if_it_survives_the_swap():
    fair = judge_pairs(ScriptedJudge(prefers_json), PAIRS)
    assert [(v.a_first, v.b_first, v.winner) for v in fair] == [("a", "a", "a"), ("b", "b", "b")]
    assert all(v.consistent for v in fair) and position_consistency(fair) == 1.0

    judge = ScriptedJudge(lambda messages: '{"winner": 1}')  # always the answer shown first
    biased = judge_pairs(judge, PAIRS)
    assert [(v.a_first, v.b_first, v.winner) for v in biased] == [("a", "b", "inconsistent"),
                                                                  ("a", "b", "inconsistent")]
    assert position_consistency(biased) == 0.0
    # it was asked each pair in both orders
    assert [shown_answers(m) for m in judge.asked[:2]] == [(PAIRS[0]["a"], PAIRS[0]["b"]),
                                                           (PAIRS[0]["b"], PAIRS[0]["a"])]

    ties = judge_pairs(ScriptedJudge(lambda messages: '{"winner": "tie"}'), PAIRS)
    assert [v.winner for v in ties] == ["tie", "tie"] and position_consistency(ties) == 1.0

    replies = iter(['{"winner": 1}', "Answer 2 wins", '{"winner": 2}', '{"winner": "tie"}'])
    mixed = judge_pairs(ScriptedJudge(lambda messages: next(replies)), PAIRS)
    assert [v.winner for v in mixed] == [UNPARSED, "inconsistent"]  # a win on one side and a tie on the other
    assert mixed[0].replies == ('{"winner": 1}', "Answer 2 wins")
    assert position_consistency(mixed) == 0.0  # the unread pair is left out, the read one is inconsistent
    assert math.isnan(position_consistency([PairJudgement("x", ("", ""), UNPARSED, UNPARSED)]))


# ---------------------------------------------------------------------------------------------------------
# Agreement and calibration


def test_cohen_kappa_by_hand():
    # 2x2 table of 50 items:       rater 2 good   rater 2 bad
    #   rater 1 good                    20              5
    #   rater 1 bad                     10             15
    # p_o = 35/50 = 0.7;  p_e = (25/50)(30/50) + (25/50)(20/50) = 0.3 + 0.2 = 0.5;  kappa = (0.7 - 0.5) / 0.5 = 0.4
    first = ["good"] * 25 + ["bad"] * 25
    second = ["good"] * 20 + ["bad"] * 5 + ["good"] * 10 + ["bad"] * 15
    assert agreement(first, second) == pytest.approx(0.7)
    assert cohen_kappa(first, second) == pytest.approx(0.4)
    assert cohen_kappa(first, first) == 1.0
    assert cohen_kappa(first, ["bad"] * 50) == 0.0  # a constant rater agrees only by chance
    assert cohen_kappa(["good", "bad"], ["bad", "good"]) == pytest.approx(-1.0)
    # three labels, [5, 5, 4, 3] vs [5, 4, 4, 5]: p_o = 2/4; marginals 5: 2/4 and 2/4, 4: 1/4 and 2/4, 3: 1/4 and 0
    # p_e = (2/4)(2/4) + (1/4)(2/4) + 0 = 6/16;  kappa = (8/16 - 6/16) / (10/16) = 0.2
    assert cohen_kappa([5, 5, 4, 3], [5, 4, 4, 5]) == pytest.approx(0.2)
    assert math.isnan(cohen_kappa(["good"] * 3, ["good"] * 3))  # chance agreement 1: undefined
    with pytest.raises(ValueError, match="equally long"):
        agreement([1, 2], [1])


def test_judgements_file_loads_into_pairs_with_a_human_preference(rows, tmp_path):
    assert len(rows) == 300
    pairs = judgement_pairs(rows)
    assert len(pairs) == 150
    first = pairs[0]  # judge-000: a scored 3, b scored 5
    assert (first["id"], first["human"], first["ids"]) == ("judge-000", "b", ("judge-000a", "judge-000b"))
    assert {p["human"] for p in pairs} <= {"a", "b", "tie"}

    lines = [json.dumps(r) for r in rows[:4]]
    bad = tmp_path / "judgements.jsonl"
    bad.write_text("\n".join(lines[:2] + [json.dumps(dict(rows[2], score=7))] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=r"judgements.jsonl, line 3: field 'score' is 7"):
        load_judgements(bad)
    bad.write_text(json.dumps({k: v for k, v in rows[0].items() if k != "answer"}) + "\n")
    with pytest.raises(ValueError, match=r"line 1: field 'answer' is None; it must be a str"):
        load_judgements(bad)
    bad.write_text(lines[0] + "\n{not json\n")
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        load_judgements(bad)
    with pytest.raises(ValueError, match="pair 'judge-000' has 1 row"):
        judgement_pairs(rows[:1])


def test_calibration_of_a_perfect_a_constant_and_an_unreadable_judge(rows):
    human = {(r["message"], r["answer"]): r["score"] for r in rows}

    def perfect(messages):
        user = messages[-1]["content"]
        if "Answer 1:" in user:
            first, second = shown_answers(messages)
            message = user.split("Customer message:\n", 1)[1].split("\n\nAnswer 1:\n", 1)[0]
            s1, s2 = human[(message, first)], human[(message, second)]
            return json.dumps({"winner": "tie" if s1 == s2 else 1 if s1 > s2 else 2})
        message, answer = user.split("Customer message:\n", 1)[1].split("\n\nAnswer to grade:\n", 1)
        return json.dumps({"score": human[(message, answer)]})

    result = calibrate(ScriptedJudge(perfect), rows)
    assert (result.n_items, result.unparsed_scores, result.n_pairs, result.unparsed_pairs) == (300, 0, 150, 0)
    assert result.score_agreement == result.within_one == result.verdict_agreement == result.verdict_kappa == 1.0
    assert result.position_consistency == result.pair_agreement == 1.0

    constant = calibrate(ScriptedJudge(lambda m: '{"winner": 1}' if "Answer 1:" in m[-1]["content"]
                                       else '{"score": 3}'), rows)
    scores = [r["score"] for r in rows]
    assert constant.score_agreement == pytest.approx(scores.count(3) / 300)
    assert constant.within_one == pytest.approx(sum(s in (2, 3, 4) for s in scores) / 300)
    assert constant.verdict_agreement == pytest.approx(sum(r["verdict"] == "bad" for r in rows) / 300)
    assert constant.verdict_kappa == 0.0
    assert constant.position_consistency == 0.0  # "the first answer" never survives the swap
    ties = sum(p["human"] == "tie" for p in judgement_pairs(rows))
    assert constant.pair_agreement == pytest.approx(ties / 150)  # inconsistent verdicts count as ties
    assert "position consistency 0.000" in constant.lines()

    unreadable = calibrate(ScriptedJudge(lambda m: "This answer looks fine to me."), rows[:20])
    assert (unreadable.unparsed_scores, unreadable.unparsed_pairs) == (20, 10)
    assert all(s.score == UNPARSED and s.reply == "This answer looks fine to me." for s in unreadable.scores)
    assert math.isnan(unreadable.score_agreement) and math.isnan(unreadable.position_consistency)


# ---------------------------------------------------------------------------------------------------------
# Backends


def test_local_judge_on_the_tiny_model(rows, tiny):
    model, tokenizer = tiny
    judge = LocalJudge(model, tokenizer, max_new_tokens=16)
    [judged] = judge_scores(judge, rows[:1])
    assert isinstance(judged.reply, str) and judged.score == parse_score(judged.reply)
    assert judged.reply == judge.complete(rubric_messages(rows[0]["message"], rows[0]["answer"]))  # greedy: repeatable
    with pytest.raises(ValueError, match=r"conversation 0 has \d+ prompt tokens.*context of 512 tokens"):
        judge.complete(rubric_messages("help " * 600, "{}"))


def test_endpoint_judge_gets_the_same_replies_as_the_local_model_from_transformers_serve(served_tiny_model, tiny, rows):
    model, tokenizer = tiny
    endpoint = EndpointJudge(served_tiny_model.base_url, model=served_tiny_model.model, max_tokens=16, timeout=60)
    local = LocalJudge(model, tokenizer, max_new_tokens=16)
    conversations = [rubric_messages(rows[0]["message"], rows[0]["answer"]),
                     pairwise_messages(rows[0]["message"], rows[0]["answer"], rows[1]["answer"])]
    replies = endpoint.complete_all(conversations)
    assert all(isinstance(r, str) and r for r in replies)
    assert replies == local.complete_all(conversations), "greedy decoding on the same model gives the same text"
    # the whole calibration runs through the endpoint; the tiny model's prose replies are recorded as unparsed
    result = calibrate(endpoint, rows[:2])
    assert result.n_items == 2 and result.n_pairs == 1
    assert [s.score for s in result.scores] == [parse_score(s.reply) for s in result.scores]
    assert result.scores[0].reply == replies[0]


def test_behaviour_tests_run_on_a_model_behind_an_endpoint(served_tiny_model, tiny):
    from course_lib.behaviour import model_answerer, run_behaviour_tests
    from course_lib.tickets import load_tickets

    rows = load_tickets(data_path("tickets", "gold_test.jsonl"))[:1]
    endpoint = EndpointJudge(served_tiny_model.base_url, model=served_tiny_model.model, max_tokens=24, timeout=60)
    remote = run_behaviour_tests(endpoint.complete_all, rows, tests=["urgent_added", "format"])
    local = run_behaviour_tests(model_answerer(*tiny, max_new_tokens=24), rows, tests=["urgent_added", "format"])
    assert remote.table() == local.table()
    assert ([f.outputs for f in remote.results["format"].failures]
            == [f.outputs for f in local.results["format"].failures])
    assert remote.results["format"].failed == 2  # the message and its urgent variant, both answered in prose


def test_endpoint_judge_reports_a_request_the_real_server_rejects(served_tiny_model):
    judge = EndpointJudge(served_tiny_model.base_url, model="some-other-model", timeout=60)
    with pytest.raises(EndpointError, match=r"/v1/chat/completions answered HTTP 400: .*pinned to"):
        judge.complete([{"role": "user", "content": "hi"}])


def test_endpoint_judge_sends_a_standard_request_with_the_key_from_the_environment(error_server, monkeypatch):
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    monkeypatch.setenv("JUDGE_BASE_URL", error_server.url("ok") + "/")
    judge = EndpointJudge(model="judge-model", max_tokens=20)
    assert judge.url == error_server.url("ok") + "/chat/completions"
    assert parse_score(judge.complete([{"role": "user", "content": "grade this"}])) == 4  # REPLY is {"score": 4}
    request = error_server.requests[-1]
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    assert request["json"] == {"model": "judge-model", "messages": [{"role": "user", "content": "grade this"}],
                               "max_tokens": 20, "temperature": 0.0}
    assert KEY not in repr(judge) and KEY not in str(vars(judge)), "the key is read when needed, never stored"
    monkeypatch.delenv("JUDGE_API_KEY")
    assert judge.complete([{"role": "user", "content": "again"}]) == REPLY
    assert "Authorization" not in error_server.requests[-1]["headers"]


def test_endpoint_judge_retries_server_errors_then_names_the_url_but_never_the_key(error_server, monkeypatch):
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    before = len(error_server.requests)
    judge = EndpointJudge(error_server.url("error500"), model="m", retries=2, retry_wait=0.01)
    with pytest.raises(EndpointError) as caught:
        judge.complete([{"role": "user", "content": "hi"}])
    message = str(caught.value)
    assert error_server.url("error500") + "/chat/completions failed 3 time(s)" in message and "HTTP 500" in message
    assert KEY not in message and "[API key hidden]" in message, "the server echoed the key; the error hides it"
    assert len(error_server.requests) - before == 3  # one try and two retries

    flaky = EndpointJudge(error_server.url("flaky"), model="m", retries=1, retry_wait=0.01)
    assert flaky.complete([{"role": "user", "content": "hi"}]) == REPLY  # a 503, then an answer


def test_endpoint_judge_gives_up_on_a_server_that_hangs(error_server):
    judge = EndpointJudge(error_server.url("hang"), model="m", timeout=0.3, retries=1, retry_wait=0.01)
    started = time.perf_counter()
    with pytest.raises(EndpointError, match=r"/hang/v1/chat/completions failed 2 time\(s\).*time-out"):
        judge.complete([{"role": "user", "content": "hi"}])
    assert time.perf_counter() - started < HANG_SECONDS, "it stopped waiting at its own time-out"


@pytest.mark.parametrize("mode, error", [
    ("malformed", r"/malformed/v1/chat/completions sent a reply that is not JSON .*<html>"),
    ("nochoices", r"/nochoices/v1/chat/completions sent JSON without a choices\[0\]\.message\.content string"),
    ("unauthorized",
     r"/unauthorized/v1/chat/completions answered HTTP 401: .*invalid api key.*Check the key in JUDGE_API_KEY"),
    ("drop", r"/drop/v1/chat/completions failed 2 time\(s\); the last error: .*connection"),
])
def test_endpoint_judge_names_each_kind_of_bad_reply(error_server, mode, error):
    before = len(error_server.requests)
    judge = EndpointJudge(error_server.url(mode), model="m", timeout=5, retries=1, retry_wait=0.01)
    with pytest.raises(EndpointError, match=error):
        judge.complete([{"role": "user", "content": "hi"}])
    retried = mode == "drop"  # a lost connection is tried again; a reply that was wrong is not
    assert len(error_server.requests) - before == (2 if retried else 1)


def test_endpoint_judge_without_a_server_or_an_address():
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    with pytest.raises(EndpointError, match=r"failed 2 time\(s\); the last error: could not connect"):
        EndpointJudge(url, model="m", retries=1, retry_wait=0.01).complete([{"role": "user", "content": "hi"}])
    with pytest.raises(ValueError, match="pass base_url=... or set the COURSE_TEST_UNSET_URL environment variable"):
        EndpointJudge(model="m", base_url_env="COURSE_TEST_UNSET_URL")
    with pytest.raises(ValueError, match="not an http"):
        EndpointJudge("127.0.0.1:8000/v1", model="m")
    with pytest.raises(ValueError, match="max_tokens must be a whole number of at least 1, not 0"):
        EndpointJudge(url, model="m", max_tokens=0)  # a server might read 0 as "no limit"
    with pytest.raises(ValueError, match="carries credentials") as caught:
        EndpointJudge(f"https://user:{KEY}@judge.example.com/v1", model="m")
    assert KEY not in str(caught.value)


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_endpoint_judge_follows_no_redirect_so_the_key_never_reaches_another_server(error_server, monkeypatch, code):
    # Server A (the configured one) redirects to server B, both on 127.0.0.1: urllib's own redirect handler would
    # carry the Authorization header on to B (it does for 301-303, as a GET). The judge contacts B not at all.
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    target = error_server.url("ok") + "/chat/completions"
    before = len(error_server.requests)
    redirect = RedirectServer(code, target)
    try:
        judge = EndpointJudge(redirect.url(), model="m", retries=2, retry_wait=0.01)
        with pytest.raises(EndpointError) as caught:
            judge.complete([{"role": "user", "content": "hi"}])
        assert [r["method"] for r in redirect.requests] == ["POST"], "asked once: a redirect is not retried"
        assert redirect.requests[0]["headers"]["Authorization"] == f"Bearer {KEY}"  # the configured server has it
    finally:
        redirect.close()
    assert error_server.requests[before:] == [], "server B was contacted"
    message = str(caught.value)
    assert re.search(rf"{re.escape(redirect.url())}/chat/completions answered HTTP {code}, a redirect to "
                     rf"{re.escape(target)}\..*set base_url \(or JUDGE_BASE_URL\) to the final address",
                     message), message
    assert KEY not in message


def test_endpoint_judge_never_sends_the_key_over_plain_http_to_another_machine(monkeypatch):
    monkeypatch.setenv("JUDGE_API_KEY", KEY)
    judge = EndpointJudge("http://judge.example.com/v1", model="m")
    with pytest.raises(EndpointError,
                       match="refusing to send the API key from JUDGE_API_KEY over plain http") as caught:
        judge.complete([{"role": "user", "content": "hi"}])  # refused before any connection is attempted
    assert KEY not in str(caught.value)
