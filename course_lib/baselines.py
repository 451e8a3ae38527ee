"""Prompting baselines on the ticket task: zero-shot, few-shot and retrieval few-shot. Lesson 01.

Lesson 01 measures them on the gold set as the bar fine-tuning must clear; lesson 07 compares them with the
fine-tuned models. Every prompt is a chat `messages` list that `course_lib.chat.generate` takes:

    zero-shot           system, customer message
    few-shot            system, k fixed examples (user turn + assistant answer each), customer message
    retrieval few-shot  system, the k training tickets most similar to this message (BM25), customer message

Examples are part of the prompt, so they use up the model's context: `check_fits` refuses a prompt that leaves
no room for the answer, and `max_shots` finds the largest k that fits.
"""

from __future__ import annotations

import math
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from course_lib.chat import GENERATION_BATCH_SIZE, generate, prompt_text
from course_lib.evaluation import Report, gold_labels, prompts_of, score_answers
from course_lib.tickets import SYSTEM_PROMPT, TAXONOMY

METHODS = ("zero_shot", "few_shot", "retrieval_few_shot")
ANSWER_TOKENS = 96  # room left for the answer: the longest gold answer is 90 tokens for the tiny model's tokenizer


class PromptTooLongError(ValueError):
    """A prompt leaves too little of the model's context for the answer; the message names the ticket and the fix."""


# ---------------------------------------------------------------------------------------------------------
# 1) Prompts


def user_message(row: dict) -> str:
    """The customer's message of a ticket row (its last user turn)."""
    return prompts_of([row])[0][-1]["content"]


def example_turns(examples: Sequence[dict]) -> list[dict]:
    """Each labelled ticket as two turns: the customer's message (user) and its answer (assistant)."""
    turns = []
    for row in examples:
        turns.append({"role": "user", "content": user_message(row)})
        turns.append({"role": "assistant", "content": row["messages"][-1]["content"]})
    return turns


def few_shot_prompt(message: str, examples: Sequence[dict] = (), *, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    """System prompt, the examples as user/assistant turns, then `message`; no examples makes it zero-shot."""
    head = [{"role": "system", "content": system}] if system else []
    return head + example_turns(examples) + [{"role": "user", "content": message}]


def fixed_examples(rows: Sequence[dict], *, k: int, seed: int = 0) -> list[dict]:
    """k labelled rows, the same on every run: one per category group in turn (billing, shipping, ...),
    drawn with `seed`."""
    if not 0 <= k <= len(rows):
        raise ValueError(f"k={k}, but there are {len(rows)} rows to choose examples from; use 0 <= k <= {len(rows)}.")
    rng = random.Random(seed)
    by_group: dict[str, list[dict]] = {group: [] for group in TAXONOMY}
    for row in rows:
        by_group[gold_labels([row])[0]["category"].split("/")[0]].append(row)
    for group_rows in by_group.values():
        rng.shuffle(group_rows)
    groups = [group_rows for group_rows in by_group.values() if group_rows]
    depth = max((len(group_rows) for group_rows in groups), default=0)
    round_robin = [group_rows[j] for j in range(depth) for group_rows in groups if j < len(group_rows)]
    return round_robin[:k]


# ---------------------------------------------------------------------------------------------------------
# 2) Retrieval: BM25 over the customer messages of the training tickets

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lower-cased runs of letters, digits and underscores (any script); everything else separates words.

    "Mein Pulse Watch kam beschädigt an (ORD-760901)"
    -> ["mein", "pulse", "watch", "kam", "beschädigt", "an", "ord", "760901"]
    """
    return WORD.findall(text.lower())


class BM25:
    """Okapi BM25 ranking of a fixed list of texts against a query, on `words`. Lesson 01."""

    def __init__(self, texts: Sequence[str], *, k1: float = 1.5, b: float = 0.75):
        self.k1 = k1  # how fast repeats of a word stop adding to the score
        self.b = b  # how much a long text is penalised (0: not at all, 1: fully)
        docs = [words(text) for text in texts]
        self.lengths = [len(doc) for doc in docs]
        self.mean_length = sum(self.lengths) / max(1, len(docs))
        self.postings: dict[str, list[tuple[int, int]]] = {}  # word -> [(text index, count in that text)]
        for i, doc in enumerate(docs):
            for word, count in Counter(doc).items():
                self.postings.setdefault(word, []).append((i, count))
        n = len(docs)  # a word in few texts says more than one in every text:
        self.idf = {word: math.log(1 + (n - len(p) + 0.5) / (len(p) + 0.5)) for word, p in self.postings.items()}

    def scores(self, query: str) -> list[float]:
        """The BM25 score of every text for `query`; words of the query that no text has add nothing."""
        scores = [0.0] * len(self.lengths)
        for word in set(words(query)):
            for i, count in self.postings.get(word, ()):
                norm = count + self.k1 * (1 - self.b + self.b * self.lengths[i] / self.mean_length)
                scores[i] += self.idf[word] * count * (self.k1 + 1) / norm
        return scores

    def top(self, query: str, k: int) -> list[int]:
        """Indices of the k best-scoring texts, best first; ties go to the earlier text."""
        scores = self.scores(query)
        return sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k]


class Retriever:
    """Finds the labelled tickets most similar to a customer message (BM25 on the customer messages). Lesson 01."""

    def __init__(self, rows: Sequence[dict], *, k1: float = 1.5, b: float = 0.75):
        self.rows = list(rows)
        self.bm25 = BM25([user_message(row) for row in self.rows], k1=k1, b=b)

    def similar(self, message: str, k: int) -> list[dict]:
        """The k rows whose messages are most similar to `message`, most similar first."""
        return [self.rows[i] for i in self.bm25.top(message, k)]


def build_prompts(
    rows: Sequence[dict],
    *,
    method: str,  # one of METHODS
    k: int = 0,  # examples per prompt (ignored for zero_shot)
    system: str | None = SYSTEM_PROMPT,  # the system prompt, e.g. tickets.task_instructions() when the context allows
    train_rows: Sequence[dict] = (),  # where examples come from (few_shot; default: the retriever's rows)
    retriever: Retriever | None = None,  # built on train_rows when not given (retrieval_few_shot)
    seed: int = 0,  # which fixed examples (few_shot)
) -> list[list[dict]]:
    """The prompt of each ticket row for one baseline; retrieved examples go most similar last, next to the question.
    Lesson 01."""
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not a baseline; use one of {', '.join(METHODS)}.")
    if k < 0:
        raise ValueError(f"k={k}: the number of examples per prompt cannot be negative.")
    messages = [user_message(row) for row in rows]
    if method == "zero_shot" or k == 0:
        return [few_shot_prompt(m, system=system) for m in messages]
    if not train_rows and retriever is None:
        raise ValueError(f"method={method!r} with k={k} needs labelled examples: pass train_rows=... (e.g. "
                         "train_curated.jsonl).")
    if method == "few_shot":
        examples = fixed_examples(train_rows or retriever.rows, k=k, seed=seed)
        return [few_shot_prompt(m, examples, system=system) for m in messages]
    retriever = retriever or Retriever(train_rows)
    return [few_shot_prompt(m, retriever.similar(m, k)[::-1], system=system) for m in messages]


# ---------------------------------------------------------------------------------------------------------
# 3) The context budget


def context_length(model) -> int:
    """How many positions (prompt plus answer) the model takes: `max_position_embeddings` in its config."""
    return int(model.config.max_position_embeddings)


def prompt_length(tokenizer, messages: Sequence[dict]) -> int:
    """Tokens of the generation prompt for `messages`, exactly as `chat.generate` feeds it to the model."""
    return len(tokenizer(prompt_text(tokenizer, messages), add_special_tokens=False)["input_ids"])


def check_fits(tokenizer, prompts: Sequence[Sequence[dict]], *, context: int, max_new_tokens: int = ANSWER_TOKENS,
               names: Sequence[str] | None = None) -> list[int]:
    """Token length of each prompt; PromptTooLongError at the first that leaves under `max_new_tokens` for the answer.
    Lesson 01."""
    lengths = []
    for i, messages in enumerate(prompts):
        n = prompt_length(tokenizer, messages)
        if n + max_new_tokens > context:
            name = f"prompt {i}" + (f" ({names[i]})" if names else "")
            raise PromptTooLongError(
                f"{name} is {n} tokens; with {max_new_tokens} tokens for the answer it needs {n + max_new_tokens} "
                f"positions, and the model has {context}. Use fewer examples (max_shots finds the largest k that "
                "fits), a shorter system prompt, or a model with a longer context."
            )
        lengths.append(n)
    return lengths


def max_shots(tokenizer, rows: Sequence[dict], *, method: str, context: int, k_max: int,
              max_new_tokens: int = ANSWER_TOKENS, **prompt_args) -> int:
    """The largest k <= k_max for which every row's prompt fits with room for the answer (0 if no example fits).
    Lesson 01.

    `prompt_args` go to `build_prompts` (system, train_rows, retriever, seed).
    """
    for k in range(k_max, 0, -1):
        try:
            check_fits(tokenizer, build_prompts(rows, method=method, k=k, **prompt_args), context=context,
                       max_new_tokens=max_new_tokens)
            return k
        except PromptTooLongError:
            continue
    return 0


# ---------------------------------------------------------------------------------------------------------
# 4) Running a baseline


@dataclass
class BaselineResult:
    """One baseline on a set of tickets: its task metrics with intervals, and what each request cost."""

    name: str
    report: Report  # metrics with 95% bootstrap intervals
    seconds_per_request: float  # generation wall time / requests, amortised over batches of `batch_size`
    batch_size: int
    prompt_tokens: list[int] = field(repr=False)  # per request

    @property
    def mean_prompt_tokens(self) -> float:
        """Average prompt length in tokens: what a hosted model would bill as input."""
        return sum(self.prompt_tokens) / len(self.prompt_tokens)

    def line(self, keys: Sequence[str] = ("json_valid", "category_accuracy", "exact_match")) -> str:
        """One line: name, metrics with intervals, prompt tokens, latency."""
        return (f"{self.name:<20} {self.report.line(keys)}  prompt {self.mean_prompt_tokens:.0f} tok  "
                f"{self.seconds_per_request * 1000:.0f} ms/request (batch {self.batch_size})")


def run_baseline(model, tokenizer, rows: Sequence[dict], prompts: Sequence[Sequence[dict]], *, name: str,
                 batch_size: int = GENERATION_BATCH_SIZE, max_new_tokens: int = ANSWER_TOKENS,
                 n_boot: int = 1000) -> BaselineResult:
    """Greedy answers to `prompts`, scored against the gold labels of `rows`, with latency per request.
    Lesson 01 (07 reuses it).

    The prompts are checked against the model's context first. Latency is the wall time of batched generation
    (time.perf_counter) divided by the number of requests: amortised over batches of `batch_size`, so one request
    sent alone takes longer than this.
    """
    if len(prompts) != len(rows):
        raise ValueError(f"{len(prompts)} prompts for {len(rows)} rows; build one prompt per row with build_prompts.")
    names = [str(row.get("id", i)) for i, row in enumerate(rows)]
    lengths = check_fits(tokenizer, prompts, context=context_length(model), max_new_tokens=max_new_tokens, names=names)
    start = time.perf_counter()
    answers = generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)
    elapsed = time.perf_counter() - start
    report = score_answers(answers, gold_labels(rows), n_boot=n_boot)
    return BaselineResult(name, report, elapsed / len(rows), batch_size, lengths)
