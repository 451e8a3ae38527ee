"""LLM-as-a-judge: rubric scores and pairwise comparisons of ticket answers, calibrated on human labels.

Introduced in lesson 07. A judge is any object with `complete(messages) -> str`:

- `LocalJudge(model, tokenizer)` runs a transformers model in this process (greedy, `course_lib.chat.generate`);
- `EndpointJudge(model=...)` calls any OpenAI-compatible server, `POST {base_url}/chat/completions`, with the
  base URL and API key taken from the environment (`JUDGE_BASE_URL`, `JUDGE_API_KEY`). The key is read at each
  request and never stored, printed or written into an error message. Redirects are not followed: a redirect
  would carry the key to whatever address it names, so it is an error that names that address instead.

How a reply is read (`parse_score`, `parse_winner`): it counts only when it is exactly one JSON object, bare or
alone inside one Markdown code fence (```json ... ```), whose asked key holds an allowed value (extra keys such
as "reason" are allowed). Anything else (an empty reply, prose, text around the object, two objects, a
repeated key, a value out of range) is recorded as UNPARSED, never turned into a score.

Pairwise judging asks twice, with the two answers in both orders; a win counts only when both orders name the
same answer. Calibration compares the judge with the human labels of `data/tickets/judgements.jsonl`.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.chat import GENERATION_BATCH_SIZE, generate, prompt_text
from course_lib.checks import whole_number
from course_lib.jsonl import read_jsonl
from course_lib.paths import data_path
from course_lib.tickets import task_instructions

UNPARSED = "unparsed"  # recorded instead of a score when a reply cannot be read

# The rubric of data/tickets/judgements.jsonl (see course_lib/datafiles/judgements.py), best first.
RUBRIC: dict[int, str] = {
    5: "every field right, and a clear summary",
    4: "every field right, but a vague or poor summary",
    3: "sentiment or product wrong",
    2: "category or priority wrong",
    1: "not exactly one valid JSON object (broken JSON, or text around it)",
}
SCORES: tuple[int, ...] = tuple(sorted(RUBRIC))  # 1 .. 5
GOOD_FROM = 4  # scores from here up are "good": a human's or a judge's verdict on one answer
WINNERS: tuple[str, ...] = ("1", "2", "tie")  # what a pairwise reply may name

TASK = ("You grade answers to a support-ticket triage task. A good answer is exactly one JSON object with the keys "
        "category, priority, product, sentiment, order_id and summary.")


# ---------------------------------------------------------------------------------------------------------
# 1) Prompts (short enough for the tiny model's 512-token context)


def _system(instruction: str, task_rules: bool) -> str:
    parts = [TASK]
    if task_rules:  # the allowed values and the priority rules: long, for judges with a large context
        parts.append("The rules the answer must follow:\n" + task_instructions())
    parts.append("Rubric:\n" + "\n".join(f"{score}: {RUBRIC[score]}" for score in sorted(RUBRIC, reverse=True)))
    parts.append(instruction)
    return "\n\n".join(parts)


def rubric_messages(message: str, answer: str, *, task_rules: bool = False) -> list[dict]:
    """The conversation that asks a judge to score one answer from 1 to 5 by the rubric. Lesson 07."""
    system = _system('Reply with one JSON object and nothing else: {"score": N}, N a whole number from 1 to 5.',
                     task_rules)
    user = f"Customer message:\n{message}\n\nAnswer to grade:\n{answer}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


def pairwise_messages(message: str, first: str, second: str, *, task_rules: bool = False) -> list[dict]:
    """The conversation that asks a judge which of two answers (shown as Answer 1 and Answer 2) is better. Lesson 07."""
    system = _system('Which answer is better by the rubric? Reply with one JSON object and nothing else: '
                     '{"winner": 1}, {"winner": 2} or {"winner": "tie"}.', task_rules)
    user = f"Customer message:\n{message}\n\nAnswer 1:\n{first}\n\nAnswer 2:\n{second}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# ---------------------------------------------------------------------------------------------------------
# 2) Reading replies

_FENCE = re.compile(r"```(?:json)?[ \t]*\n(.*)\n[ \t]*```|```(?:json)?[ \t]*(\{.*\})[ \t]*```",
                    re.DOTALL | re.IGNORECASE)


class _RepeatedKey(ValueError):
    pass


def _no_repeats(pairs: list[tuple[str, object]]) -> dict:
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise _RepeatedKey("a key appears twice")
    return dict(pairs)


def reply_object(reply: object) -> dict | None:
    """The one JSON object a reply consists of (bare, or alone in one code fence), else None. Lesson 07."""
    if not isinstance(reply, str):
        return None
    text = reply.strip()
    fence = _FENCE.fullmatch(text)
    if fence:
        text = (fence.group(1) if fence.group(1) is not None else fence.group(2)).strip()
    try:
        data = json.loads(text, object_pairs_hook=_no_repeats)
    except (json.JSONDecodeError, _RepeatedKey):
        return None
    return data if isinstance(data, dict) else None


def parse_score(reply: object) -> int | str:
    """The rubric score (1-5) in a judge's reply, or UNPARSED when the reply does not state exactly one. Lesson 07."""
    data = reply_object(reply)
    value = data.get("score") if data is not None else None
    if isinstance(value, int) and not isinstance(value, bool) and value in RUBRIC:
        return value
    return UNPARSED


def parse_winner(reply: object) -> str:
    """The winner a pairwise reply names: "1", "2" or "tie", or UNPARSED. Lesson 07."""
    data = reply_object(reply)
    value = data.get("winner") if data is not None else None
    if isinstance(value, bool):
        return UNPARSED
    if isinstance(value, int) and value in (1, 2):
        return str(value)
    if isinstance(value, str) and value.strip().lower() in WINNERS:
        return value.strip().lower()
    return UNPARSED


# ---------------------------------------------------------------------------------------------------------
# 3) Backends: anything with complete(messages) -> str


class Judge:
    """What every judge backend offers: the model's reply text to a conversation. Lesson 07."""

    def complete(self, messages: Sequence[dict]) -> str:
        """The model's reply to one conversation."""
        raise NotImplementedError

    def complete_all(self, conversations: Sequence[Sequence[dict]]) -> list[str]:
        """The model's reply to each conversation, in order (also usable as an `answer(prompts)` function)."""
        return [self.complete(messages) for messages in conversations]


class LocalJudge(Judge):
    """A transformers model in this process as the judge: greedy replies through `course_lib.chat.generate`.
    Lesson 07."""

    def __init__(self, model, tokenizer, *, max_new_tokens: int = 32, batch_size: int = GENERATION_BATCH_SIZE):
        self.model = model
        self.tokenizer = tokenizer
        self.max_new_tokens = max_new_tokens  # a JSON verdict needs few tokens
        self.batch_size = batch_size

    def __repr__(self) -> str:
        name = getattr(self.model.config, "_name_or_path", "") or type(self.model).__name__
        return f"LocalJudge(model={name!r}, max_new_tokens={self.max_new_tokens})"

    def complete(self, messages: Sequence[dict]) -> str:
        """The model's greedy reply to one conversation."""
        return self.complete_all([messages])[0]

    def complete_all(self, conversations: Sequence[Sequence[dict]]) -> list[str]:
        """Greedy replies to many conversations, generated in batches; a prompt too long for the model is an error."""
        limit = getattr(self.model.config, "max_position_embeddings", None)
        if limit:
            for i, messages in enumerate(conversations):
                length = len(self.tokenizer(prompt_text(self.tokenizer, messages),
                                            add_special_tokens=False)["input_ids"])
                if length + self.max_new_tokens > limit:
                    raise ValueError(
                        f"conversation {i} has {length} prompt tokens; with max_new_tokens={self.max_new_tokens} it "
                        f"exceeds the model's context of {limit} tokens. Use task_rules=False, shorten the message, "
                        "or judge with a model that has a longer context.")
        return generate(self.model, self.tokenizer, list(conversations), max_new_tokens=self.max_new_tokens,
                        batch_size=self.batch_size)


class EndpointError(RuntimeError):
    """An OpenAI-compatible endpoint failed; the message names the URL and the problem, never the API key. Lesson 07."""


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    """Follow no redirect: urllib's own handler would send the request's headers, the API key included, on to
    whatever host the redirect names. The 3xx answer comes back as an HTTPError instead."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class EndpointJudge(Judge):
    """Any OpenAI-compatible chat completions server as the judge (or as the model under test). Lesson 07.

    The base URL is `base_url`, else the `base_url_env` variable (e.g. "http://127.0.0.1:8000/v1"); the API key is
    the `api_key_env` variable, read at each request (none is sent when it is unset). A redirect is an error that
    names where it pointed: the key goes only to the configured address.
    """

    def __init__(
        self,
        base_url: str | None = None,
        *,
        model: str,  # the model name the server knows, e.g. "gpt-4o-mini" or a local path for `transformers serve`
        api_key_env: str = "JUDGE_API_KEY",  # environment variable that holds the key
        base_url_env: str = "JUDGE_BASE_URL",  # environment variable read when base_url is None
        timeout: float = 60.0,  # seconds to wait for one reply
        retries: int = 2,  # further attempts after a time-out, a lost connection, HTTP 429 or 5xx
        retry_wait: float = 1.0,  # seconds before the first retry; doubles each time
        max_tokens: int = 64,  # longest reply, in tokens
        temperature: float = 0.0,  # 0: greedy, so the same prompt gets the same reply
    ):
        url = base_url or os.environ.get(base_url_env, "")
        if not url:
            raise ValueError(f"no endpoint given: pass base_url=... or set the {base_url_env} environment variable, "
                             "e.g. http://127.0.0.1:8000/v1")
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"base URL {url!r} is not an http(s) address such as http://127.0.0.1:8000/v1")
        if parts.username or parts.password:
            raise ValueError(f"base URL for host {parts.hostname!r} carries credentials; remove them from the URL "
                             f"and put the API key in the {api_key_env} environment variable instead")
        if retries < 0 or timeout <= 0:
            raise ValueError(f"retries must be 0 or more and timeout positive (got retries={retries}, "
                             f"timeout={timeout})")
        whole_number("max_tokens", max_tokens, "Pass the longest reply in tokens, e.g. max_tokens=64; a JSON verdict "
                                               "needs few.")
        self.base_url = url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.base_url_env = base_url_env
        self.timeout = timeout
        self.retries = retries
        self.retry_wait = retry_wait
        self.max_tokens = max_tokens
        self.temperature = temperature

    def __repr__(self) -> str:
        return (f"EndpointJudge(base_url={self.base_url!r}, model={self.model!r}, api_key_env={self.api_key_env!r}, "
                f"timeout={self.timeout})")

    def _key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _error(self, text: str) -> EndpointError:
        key = self._key()
        return EndpointError(text.replace(key, "[API key hidden]") if key else text)

    def complete(self, messages: Sequence[dict]) -> str:
        """The server's reply to one conversation: `choices[0].message.content` of a chat completion."""
        payload = {"model": self.model, "messages": [dict(m) for m in messages], "max_tokens": self.max_tokens,
                   "temperature": self.temperature}
        body = self._post(json.dumps(payload).encode("utf-8"))
        try:
            data = json.loads(body)
        except json.JSONDecodeError as err:
            raise self._error(f"{self.url} sent a reply that is not JSON ({err.msg}); it began {body[:200]!r}. "
                              "Is this an OpenAI-compatible chat completions endpoint?") from None
        try:
            content = data["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            content = None
        if not isinstance(content, str):
            raise self._error(f"{self.url} sent JSON without a choices[0].message.content string; it began "
                              f"{body[:200]!r}. Is this an OpenAI-compatible chat completions endpoint?")
        return content

    def _post(self, data: bytes) -> str:
        """POST `data` to the endpoint; retry time-outs, lost connections, 429 and 5xx;
        raise EndpointError otherwise."""
        key = self._key()
        parts = urllib.parse.urlsplit(self.url)
        if key and parts.scheme == "http" and not _is_loopback(parts.hostname):
            raise self._error(f"refusing to send the API key from {self.api_key_env} over plain http to {self.url}; "
                              "use an https address, or a server on this machine (127.0.0.1)")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        opener = urllib.request.build_opener(_RefuseRedirects())  # the key never follows a redirect elsewhere
        attempts, last = self.retries + 1, ""
        for attempt in range(attempts):
            if attempt:
                time.sleep(self.retry_wait * 2 ** (attempt - 1))
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            try:
                with opener.open(request, timeout=self.timeout) as response:
                    return response.read().decode("utf-8", errors="replace")
            except urllib.error.HTTPError as err:
                if 300 <= err.code < 400:
                    location = err.headers.get("Location") if err.headers else None
                    target = urllib.parse.urljoin(self.url, location) if location else "no address (no Location header)"
                    raise self._error(
                        f"{self.url} answered HTTP {err.code}, a redirect to {target}. The judge follows no redirect, "
                        "so that the API key goes only to the address you configured: set base_url (or "
                        f"{self.base_url_env}) to the final address directly, the part before "
                        "/chat/completions.") from None
                detail = err.read(300).decode("utf-8", errors="replace").strip()
                if err.code == 429 or err.code >= 500:  # rate limits and server errors are worth another try
                    last = f"HTTP {err.code}: {detail}"
                    continue
                hint = {401: f"Check the key in {self.api_key_env}", 403: f"Check the key in {self.api_key_env}",
                        404: "Check the base URL (it usually ends in /v1)"}.get(
                    err.code, f"Check the request, e.g. that the server knows the model {self.model!r}")
                raise self._error(f"{self.url} answered HTTP {err.code}: {detail}. {hint}.") from None
            except TimeoutError:
                last = f"no reply within {self.timeout} s (time-out)"
            except urllib.error.URLError as err:
                if isinstance(err.reason, TimeoutError):
                    last = f"no reply within {self.timeout} s (time-out)"
                else:
                    last = f"could not connect ({err.reason})"
            except (OSError, http.client.HTTPException) as err:  # e.g. the server closed the connection mid-reply
                last = f"the connection failed ({type(err).__name__}: {err})"
        raise self._error(f"{self.url} failed {attempts} time(s); the last error: {last}. Check that the server is "
                          "running and reachable, or raise `timeout`/`retries`.")


# ---------------------------------------------------------------------------------------------------------
# 4) Judging many items


@dataclass(frozen=True)
class ScoreJudgement:
    """The judge's rubric score of one answer, with its raw reply."""

    id: str  # the item's id
    reply: str  # what the judge wrote
    score: int | str  # 1-5, or UNPARSED


@dataclass(frozen=True)
class PairJudgement:
    """The judge's verdict on two answers, asked in both orders; winners are named "a", "b" or "tie"."""

    id: str  # the pair's id
    replies: tuple[str, str]  # the judge's reply with a shown first, then with b shown first
    a_first: str  # the winner when a is Answer 1: "a", "b", "tie" or UNPARSED
    b_first: str  # the winner when b is Answer 1, named by answer: "a", "b", "tie" or UNPARSED

    @property
    def parsed(self) -> bool:
        """Both replies could be read."""
        return UNPARSED not in (self.a_first, self.b_first)

    @property
    def consistent(self) -> bool:
        """Both orders were read and named the same winner (or both a tie)."""
        return self.parsed and self.a_first == self.b_first

    @property
    def winner(self) -> str:
        """"a" or "b" only when it won in both orders; "tie", "inconsistent" (orders disagree) or UNPARSED otherwise."""
        if not self.parsed:
            return UNPARSED
        return self.a_first if self.consistent else "inconsistent"


def judge_scores(judge: Judge, items: Sequence[dict], *, task_rules: bool = False) -> list[ScoreJudgement]:
    """The judge's rubric score of each item (a dict with "id", "message", "answer"). Lesson 07."""
    replies = judge.complete_all([rubric_messages(it["message"], it["answer"], task_rules=task_rules) for it in items])
    return [ScoreJudgement(id=it["id"], reply=r, score=parse_score(r)) for it, r in zip(items, replies, strict=True)]


def judge_pairs(judge: Judge, pairs: Sequence[dict], *, task_rules: bool = False) -> list[PairJudgement]:
    """The judge's verdict on each pair (a dict with "id", "message", "a", "b"), asked in both orders. Lesson 07."""
    conversations = []
    for pair in pairs:
        conversations.append(pairwise_messages(pair["message"], pair["a"], pair["b"], task_rules=task_rules))
        conversations.append(pairwise_messages(pair["message"], pair["b"], pair["a"], task_rules=task_rules))
    replies = judge.complete_all(conversations)
    by_position = ({"1": "a", "2": "b", "tie": "tie", UNPARSED: UNPARSED},  # a shown first
                   {"1": "b", "2": "a", "tie": "tie", UNPARSED: UNPARSED})  # b shown first
    out = []
    for i, pair in enumerate(pairs):
        first, swapped = replies[2 * i], replies[2 * i + 1]
        out.append(PairJudgement(id=pair["id"], replies=(first, swapped), a_first=by_position[0][parse_winner(first)],
                                 b_first=by_position[1][parse_winner(swapped)]))
    return out


# ---------------------------------------------------------------------------------------------------------
# 5) Calibration against human labels

JUDGEMENT_FIELDS = {"id": str, "pair": str, "message": str, "answer": str, "score": int, "verdict": str}


def load_judgements(path: Path | str | None = None) -> list[dict]:
    """The human-labelled answers of `data/tickets/judgements.jsonl`; a bad row raises ValueError naming line and field.
    Lesson 07."""
    rows = []
    for where, row in read_jsonl(path if path is not None else data_path("tickets", "judgements.jsonl")):
        if not isinstance(row, dict):
            raise ValueError(f"{where}: a row must be a JSON object with the fields {', '.join(JUDGEMENT_FIELDS)}.")
        for name, kind in JUDGEMENT_FIELDS.items():
            if not isinstance(row.get(name), kind) or isinstance(row.get(name), bool):
                raise ValueError(f"{where}: field {name!r} is {row.get(name)!r}; it must be a {kind.__name__}.")
        if row["score"] not in RUBRIC:
            raise ValueError(f"{where}: field 'score' is {row['score']}; it must be a whole number from 1 to 5.")
        if row["verdict"] != ("good" if row["score"] >= GOOD_FROM else "bad"):
            raise ValueError(f"{where}: field 'verdict' is {row['verdict']!r} but the score is {row['score']}; "
                             f"scores from {GOOD_FROM} up are 'good', the others 'bad'.")
        rows.append(row)
    return rows


def judgement_pairs(rows: Sequence[dict]) -> list[dict]:
    """The rows grouped into pairs: id, message, answers a and b, and the human preference ("a", "b" or "tie").
    Lesson 07."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(row["pair"], []).append(row)
    pairs = []
    for pair_id, members in groups.items():
        if len(members) != 2 or members[0]["message"] != members[1]["message"]:
            raise ValueError(f"pair {pair_id!r} has {len(members)} row(s) ({', '.join(m['id'] for m in members)}); "
                             "a pair needs exactly two answers to the same message")
        a, b = members
        human = "a" if a["score"] > b["score"] else "b" if b["score"] > a["score"] else "tie"
        pairs.append({"id": pair_id, "message": a["message"], "a": a["answer"], "b": b["answer"], "human": human,
                      "ids": (a["id"], b["id"])})
    return pairs


def agreement(first: Sequence, second: Sequence) -> float:
    """Share of items on which two raters give the same label. Lesson 07."""
    if len(first) != len(second) or not first:
        raise ValueError(f"agreement needs two equally long, non-empty lists of labels (got {len(first)} and "
                         f"{len(second)})")
    return sum(x == y for x, y in zip(first, second, strict=True)) / len(first)


def cohen_kappa(first: Sequence, second: Sequence) -> float:
    """Cohen's kappa: agreement beyond chance, (p_o - p_e) / (1 - p_e); nan when chance agreement is 1. Lesson 07."""
    observed = agreement(first, second)
    n = len(first)
    labels = set(first) | set(second)
    expected = sum((list(first).count(label) / n) * (list(second).count(label) / n) for label in labels)
    if expected == 1.0:  # both raters used one and the same label throughout: kappa is undefined
        return float("nan")
    return (observed - expected) / (1 - expected)


def position_consistency(pairs: Sequence[PairJudgement]) -> float:
    """Share of read pairs whose verdict survives swapping the answers' positions (nan when none was read).
    Lesson 07."""
    parsed = [p for p in pairs if p.parsed]
    return sum(p.consistent for p in parsed) / len(parsed) if parsed else float("nan")


def _verdict(score: int) -> str:
    return "good" if score >= GOOD_FROM else "bad"


@dataclass
class Calibration:
    """How well a judge agrees with the human labels; unread replies are counted, never scored. Lesson 07."""

    n_items: int  # answers scored
    unparsed_scores: int  # rubric replies that could not be read
    score_agreement: float  # same 1-5 score as the human, over read replies
    within_one: float  # score at most one point from the human's, over read replies
    verdict_agreement: float  # same good/bad verdict (good: score >= GOOD_FROM), over read replies
    verdict_kappa: float  # Cohen's kappa of the good/bad verdicts, over read replies
    n_pairs: int  # pairs compared
    unparsed_pairs: int  # pairs with at least one unreadable reply
    position_consistency: float  # read pairs whose winner survives the swap
    pair_agreement: float  # read pairs whose outcome (an inconsistent one counts as a tie) matches the human preference
    scores: list[ScoreJudgement] = field(repr=False)
    pairs: list[PairJudgement] = field(repr=False)

    def lines(self) -> str:
        """The figures, one per line."""
        return "\n".join([
            f"rubric scores: {self.n_items} answers, {self.unparsed_scores} unparsed",
            f"  exact score agreement {self.score_agreement:.3f}, within one point {self.within_one:.3f}",
            f"  good/bad agreement {self.verdict_agreement:.3f}, Cohen's kappa {self.verdict_kappa:.3f}",
            f"pairwise: {self.n_pairs} pairs, {self.unparsed_pairs} unparsed",
            f"  position consistency {self.position_consistency:.3f}, agreement with humans {self.pair_agreement:.3f}",
        ])


def calibrate(judge: Judge, rows: Sequence[dict], *, task_rules: bool = False) -> Calibration:
    """Score every row and compare every pair with `judge`, and measure agreement with the human labels. Lesson 07."""
    nan = float("nan")
    scores = judge_scores(judge, rows, task_rules=task_rules)
    read = [(s.score, row["score"]) for s, row in zip(scores, rows, strict=True) if s.score != UNPARSED]
    judge_read, human_read = [j for j, _ in read], [h for _, h in read]
    pairs = judgement_pairs(rows)
    verdicts = judge_pairs(judge, pairs, task_rules=task_rules)
    read_pairs = [(v, p["human"]) for v, p in zip(verdicts, pairs, strict=True) if v.parsed]
    return Calibration(
        n_items=len(rows),
        unparsed_scores=len(rows) - len(read),
        score_agreement=agreement(judge_read, human_read) if read else nan,
        within_one=sum(abs(j - h) <= 1 for j, h in read) / len(read) if read else nan,
        verdict_agreement=agreement([_verdict(j) for j in judge_read],
                                    [_verdict(h) for h in human_read]) if read else nan,
        verdict_kappa=cohen_kappa([_verdict(j) for j in judge_read],
                                  [_verdict(h) for h in human_read]) if read else nan,
        n_pairs=len(pairs),
        unparsed_pairs=len(pairs) - len(read_pairs),
        position_consistency=position_consistency(verdicts),
        pair_agreement=(sum((v.winner if v.consistent else "tie") == human for v, human in read_pairs) / len(read_pairs)
                        if read_pairs else nan),
        scores=scores,
        pairs=verdicts,
    )
