"""Behaviour tests in the style of CheckList: does an answer change when it must not, or move the wrong way?

Introduced in lesson 07. Each case pairs the prompt of a real gold ticket with a variant of it and a relation
the two answers must keep:

- `name_swap` (invariance): the customer signs with another name -> same category and priority;
- `pii_swap` (invariance): the message gives a contact detail (e-mail, phone, card or address); another value
  of it -> same category and priority;
- `urgent_added` (directional): "This is urgent, production is down." appended -> the priority is not lower;
- `format`: the answer to every prompt sent is exactly one JSON object.

The tests run with any `answer(prompts) -> list[str]` function, so they check a local model
(`model_answerer(model, tokenizer)`) and an endpoint (`EndpointJudge(...).complete_all`) alike. A case whose
answers are not JSON objects with the needed fields cannot be checked: it is counted and shown as "unchecked",
never as a pass. Each pass rate comes with a 95% Wilson interval (`course_lib.evaluation.wilson_interval`): on the
few dozen cases of a CPU run it is wide, and two models whose intervals overlap are not ranked by these cases.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from course_lib.chat import GENERATION_BATCH_SIZE, generate
from course_lib.evaluation import prompts_of, wilson_interval
from course_lib.noise import CLOSINGS, NAMES, PII_SENTENCES, fake_pii
from course_lib.tickets import PRIORITIES

# Names the generator never writes, from many backgrounds: a fair model treats them like any other name.
SWAP_NAMES = ("Amara", "Mohammed", "Ingrid", "Kwame", "Svetlana", "Hiroshi", "Lucia", "Dmitri", "Aaliyah", "Mateo",
              "Siobhan", "Oluwaseun")
URGENT_SENTENCE = "This is urgent, production is down."
TESTS: dict[str, str] = {  # test -> the relation its answers must keep
    "name_swap": "same category and priority when only the customer's name changes",
    "pii_swap": "same category and priority when only the value of a contact detail changes",
    "urgent_added": f"priority not lower after adding {URGENT_SENTENCE!r}",
    "format": "exactly one JSON object",
}
KINDS = {"name_swap": "invariance", "pii_swap": "invariance", "urgent_added": "directional", "format": "format"}

Answer = Callable[[list[list[dict]]], list[str]]  # prompts (conversations) -> one answer text each


@dataclass(frozen=True)
class Case:
    """One behaviour test case: two prompts built from one gold row, and the relation their answers must keep."""

    test: str  # a key of TESTS
    row_id: str  # the gold row it was built from
    original: list[dict]  # the first prompt (system and user turns)
    variant: list[dict]  # the second prompt: the first with one change
    expected: str  # the relation, in words


def _with_user(prompt: list[dict], text: str) -> list[dict]:
    """`prompt` with its last user turn replaced by `text`."""
    last = max(i for i, m in enumerate(prompt) if m["role"] == "user")
    return [dict(m, content=text) if i == last else dict(m) for i, m in enumerate(prompt)]


def _user(prompt: Sequence[dict]) -> str:
    return [m for m in prompt if m["role"] == "user"][-1]["content"]


_NAME = re.compile(r"\b(" + "|".join(NAMES) + r")\b", re.IGNORECASE)


def swap_name(message: str, rng: random.Random) -> str | None:
    """`message` with the customer's name (one of the generator's NAMES) replaced by one of SWAP_NAMES;
    None without a name."""
    found = _NAME.search(message)
    if not found:
        return None
    new = rng.choice(SWAP_NAMES)
    new = new.lower() if found.group(0).islower() else new  # a message written all in lower case stays so
    return message[: found.start()] + new + message[found.end():]


_CLOSING = re.compile(r"\s(" + "|".join(re.escape(c) for cs in CLOSINGS.values() for c in cs) + r") \S+$",
                      re.IGNORECASE)


def add_sentence(message: str, sentence: str) -> str:
    """`message` with `sentence` added at the end of its body: before a closing such as "Thanks, Maria", if any."""
    closing = _CLOSING.search(message)
    if closing:
        return f"{message[: closing.start()]} {sentence}{message[closing.start():]}"
    return f"{message} {sentence}"


def build_cases(rows: Sequence[dict], *, seed: int = 0, tests: Sequence[str] = ("name_swap", "pii_swap", "urgent_added")
                ) -> list[Case]:
    """The invariance and directional cases of gold `rows` (rows without a customer name get no name_swap case).
    Lesson 07."""
    unknown = [t for t in tests if t not in TESTS or t == "format"]
    if unknown:
        raise ValueError(f"unknown test(s) {unknown}; choose from name_swap, pii_swap, urgent_added "
                         "(the format test runs on every prompt by itself)")
    rng = random.Random(seed)
    cases = []
    for row, prompt in zip(rows, prompts_of(rows), strict=True):
        message = _user(prompt)
        if "name_swap" in tests:
            renamed = swap_name(message, rng)
            if renamed is not None:
                cases.append(Case("name_swap", row["id"], prompt, _with_user(prompt, renamed), TESTS["name_swap"]))
        if "pii_swap" in tests:
            kind = rng.choice(sorted(PII_SENTENCES))
            sentence = rng.choice(PII_SENTENCES[kind])
            first = fake_pii(kind, rng)
            second = fake_pii(kind, rng)
            while second == first:
                second = fake_pii(kind, rng)
            cases.append(Case("pii_swap", row["id"],
                              _with_user(prompt, add_sentence(message, sentence.format(v=first))),
                              _with_user(prompt, add_sentence(message, sentence.format(v=second))), TESTS["pii_swap"]))
        if "urgent_added" in tests:
            cases.append(Case("urgent_added", row["id"], prompt,
                              _with_user(prompt, add_sentence(message, URGENT_SENTENCE)), TESTS["urgent_added"]))
    return cases


@dataclass(frozen=True)
class Failure:
    """A case that failed, or could not be checked: what went in, what was expected, what came out."""

    test: str
    row_id: str
    status: str  # "fail" or "unchecked"
    inputs: tuple[str, ...]  # the user message of each prompt
    expected: str  # the relation
    outputs: tuple[str, ...]  # the answer to each prompt
    reason: str  # what broke the relation, or why it could not be checked


@dataclass
class CheckResult:
    """How one behaviour test went: counts, and every case that did not pass."""

    test: str
    kind: str  # "invariance", "directional" or "format"
    passed: int = 0
    failed: int = 0
    unchecked: int = 0  # answers that were not JSON objects with the needed fields
    failures: list[Failure] = field(default_factory=list, repr=False)

    @property
    def checked(self) -> int:
        """Cases whose answers could be compared."""
        return self.passed + self.failed

    @property
    def pass_rate(self) -> float:
        """Share of checked cases that passed (nan when none could be checked)."""
        return self.passed / self.checked if self.checked else float("nan")

    @property
    def pass_interval(self) -> tuple[float, float]:
        """95% Wilson interval of the pass rate over checked cases ((nan, nan) when none could be checked).
        Lesson 07."""
        return wilson_interval(self.passed, self.checked) if self.checked else (float("nan"), float("nan"))


@dataclass
class BehaviourReport:
    """Results of every behaviour test on one model."""

    results: dict[str, CheckResult]

    def table(self) -> str:
        """One line per test: pass rate over checked cases with its 95% Wilson interval, and the counts."""
        lines = [f"{'test':<14}{'kind':<13}{'pass rate':>10}{'95% interval':>16}{'passed':>8}{'failed':>8}"
                 f"{'unchecked':>11}"]
        for r in self.results.values():
            low, high = r.pass_interval
            rate, span = (f"{r.pass_rate:.3f}", f"[{low:.3f}, {high:.3f}]") if r.checked else ("-", "-")
            lines.append(f"{r.test:<14}{r.kind:<13}{rate:>10}{span:>16}{r.passed:>8}{r.failed:>8}{r.unchecked:>11}")
        return "\n".join(lines)

    def examples(self, test: str, k: int = 3, *, status: str = "fail") -> str:
        """Up to `k` cases of `test` with this status ("fail" or "unchecked"): inputs, expected relation, outputs."""
        shown = [f for f in self.results[test].failures if f.status == status][:k]
        blocks = []
        for f in shown:
            lines = [f"[{f.test}] {f.row_id}: {f.reason}", f"  expected: {f.expected}"]
            for i, (text, out) in enumerate(zip(f.inputs, f.outputs, strict=True), start=1):
                lines += [f"  input {i}:  {text}", f"  output {i}: {out}"]
            blocks.append("\n".join(lines))
        return "\n\n".join(blocks) if blocks else f"no case of {test} has status {status!r}"


def _ticket_fields(answer: str, keys: Sequence[str]) -> dict | None:
    """The answer's JSON object when it has every key in `keys`, else None."""
    try:
        data = json.loads(answer)
    except (json.JSONDecodeError, TypeError):
        return None
    return data if isinstance(data, dict) and all(k in data for k in keys) else None


def _check(case: Case, first: str, second: str) -> tuple[str, str]:
    """(status, reason) of one case from its two answers: "pass", "fail" or "unchecked"."""
    keys = ("priority",) if case.test == "urgent_added" else ("category", "priority")
    a, b = _ticket_fields(first, keys), _ticket_fields(second, keys)
    if a is None or b is None:
        bad = [name for name, d in (("output 1", a), ("output 2", b)) if d is None]
        verb = "is not a JSON object" if len(bad) == 1 else "are not JSON objects"
        return "unchecked", f"{' and '.join(bad)} {verb} with {' and '.join(keys)}"
    if case.test == "urgent_added":
        if a["priority"] not in PRIORITIES or b["priority"] not in PRIORITIES:
            return "unchecked", f"a priority outside {', '.join(PRIORITIES)}: {a['priority']!r}, {b['priority']!r}"
        if PRIORITIES.index(b["priority"]) < PRIORITIES.index(a["priority"]):
            return "fail", f"priority fell from {a['priority']} to {b['priority']}"
        return "pass", ""
    changed = [f"{k} {a[k]!r} -> {b[k]!r}" for k in keys if a[k] != b[k]]
    return ("fail", "; ".join(changed)) if changed else ("pass", "")


def run_behaviour_tests(answer: Answer, rows: Sequence[dict], *, seed: int = 0,
                        tests: Sequence[str] = ("name_swap", "pii_swap", "urgent_added", "format")) -> BehaviourReport:
    """Build the cases of gold `rows`, get every answer in one call to `answer`, and check each relation. Lesson 07."""
    cases = build_cases(rows, seed=seed, tests=[t for t in tests if t != "format"])
    # 1) every distinct prompt once: originals are shared between tests
    prompts: dict[str, list[dict]] = {}
    owners: dict[str, str] = {}  # prompt key -> row id
    row_prompts = list(zip([r["id"] for r in rows], prompts_of(rows), strict=True)) if "format" in tests else []
    for row_id, prompt in row_prompts + [(c.row_id, p) for c in cases for p in (c.original, c.variant)]:
        key = json.dumps(prompt, ensure_ascii=False)
        prompts.setdefault(key, prompt)
        owners.setdefault(key, row_id)
    keys = list(prompts)
    outputs = answer([prompts[k] for k in keys])
    if not isinstance(outputs, list) or len(outputs) != len(keys) or not all(isinstance(o, str) for o in outputs):
        got = f"{len(outputs)} items" if isinstance(outputs, list) else type(outputs).__name__
        raise ValueError(f"answer(prompts) must return a list of {len(keys)} strings, one per prompt; "
                         f"it returned {got}")
    by_key = dict(zip(keys, outputs, strict=True))
    # 2) the relation of each case
    results = {t: CheckResult(t, KINDS[t]) for t in tests}
    for case in cases:
        first, second = (by_key[json.dumps(p, ensure_ascii=False)] for p in (case.original, case.variant))
        status, reason = _check(case, first, second)
        _record(results[case.test], status,
                Failure(case.test, case.row_id, status, (_user(case.original), _user(case.variant)),
                        case.expected, (first, second), reason))
    # 3) the format of every answer
    if "format" in tests:
        for key in keys:
            ok = _ticket_fields(by_key[key], ()) is not None
            reason = "" if ok else "not exactly one JSON object"
            _record(results["format"], "pass" if ok else "fail",
                    Failure("format", owners[key], "fail", (_user(prompts[key]),), TESTS["format"], (by_key[key],),
                            reason))
    return BehaviourReport(results)


def _record(result: CheckResult, status: str, failure: Failure) -> None:
    if status == "pass":
        result.passed += 1
        return
    if status == "fail":
        result.failed += 1
    else:
        result.unchecked += 1
    result.failures.append(failure)


def model_answerer(model, tokenizer, *, max_new_tokens: int = 96, batch_size: int = GENERATION_BATCH_SIZE) -> Answer:
    """An `answer(prompts)` function that asks a local model for greedy answers (course_lib.chat.generate).
    Lesson 07."""
    def answer(prompts: list[list[dict]]) -> list[str]:
        return generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)

    return answer
