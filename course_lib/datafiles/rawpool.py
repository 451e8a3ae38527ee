"""The raw training pool: ~5,000 ticket rows with realistic defects planted in known proportions.

Lesson 02 curates it. Every planted defect is written to a sidecar file (`raw_pool_defects.jsonl`: line,
kind, detail) so that curation can be scored. Clean rows are drawn from the ticket generator and kept only
if their message is not similar (character 5-gram Jaccard >= BASE_MAX_SIMILARITY) to any other clean row or
to any gold or dev message, so every near-duplicate in the pool is one that was planted.

Regenerate with `python -m course_lib.datafiles`.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

from datasketch import MinHash, MinHashLSH

from course_lib.curation.dedup import jaccard, shingles
from course_lib.datafiles.tickets import Ticket, make_ticket
from course_lib.noise import CLOSINGS, GREETINGS, NAMES, PII_SENTENCES, fake_pii, wrong_label
from course_lib.tickets import CATEGORY_PRODUCTS, decide_priority, format_answer, to_messages

SEED = 4101
BASE_MAX_SIMILARITY = 0.6  # clean rows are less similar than this to each other and to gold/dev messages
NEAR_DUP_RANGE = (0.75, 0.97)  # planted near duplicates are this similar to their source
# How many rows of each defect the pool gets. Rows are ~5,000 lines in all.
PLANTED = {
    "exact_duplicate": 250,  # a copy of an earlier row (half of them with changed case or spacing)
    "near_duplicate": 250,  # an earlier row reworded a little, same label
    "wrong_label": 150,  # half as reworded copies of an earlier row, half standalone
    "pii": 300,  # e-mail, phone, card number or street address in the message (and a third in the answer)
    "malformed": 100,  # bad JSON, missing or unknown role, empty assistant turn, wrong last turn, not an object
    "truncated_answer": 100,  # the JSON answer is cut off
    "overlong": 50,  # a long pasted log makes the row too long to train on
    "off_task": 100,  # not a ticket at all: poems, trivia, translation
    "other_language": 100,  # Italian, Portuguese or Dutch: languages the support desk does not serve
    "test_overlap": 20,  # a gold test ticket (or a near copy) that leaked into the training pool
}
BASE_SIZE = 4100  # clean generated rows before copies and new rows are added


@dataclass
class PoolRow:
    line_text: str | None = None  # a raw line (malformed rows); otherwise built from `row`
    row: dict | None = None
    defect: str | None = None
    detail: dict = field(default_factory=dict)
    source: int | None = None  # index of the row this one copies (for duplicates), resolved to a line at the end


# ---------------------------------------------------------------------------------------------------------
# Clean rows


class SimilarityIndex:
    """Incremental MinHash LSH index: is a new text similar to any text already added?"""

    def __init__(self, threshold: float):
        self.threshold = threshold
        self.lsh = MinHashLSH(threshold=max(0.05, threshold - 0.2), num_perm=128)
        self.sets: dict[int, set] = {}

    def similar(self, text: str) -> bool:
        s = shingles(text)
        return any(jaccard(s, self.sets[k]) >= self.threshold for k in self.lsh.query(self._hash(s)))

    def add(self, text: str) -> None:
        s = shingles(text)
        key = len(self.sets)
        self.sets[key] = s
        self.lsh.insert(key, self._hash(s))

    @staticmethod
    def _hash(s: set) -> MinHash:
        h = MinHash(num_perm=128, seed=7)
        h.update_batch(list(s))
        return h


def clean_tickets(rng: random.Random, n: int, avoid: list[str]) -> list[Ticket]:
    """`n` tickets whose messages are mutually dissimilar and dissimilar to every text in `avoid`."""
    index = SimilarityIndex(BASE_MAX_SIMILARITY)
    for text in avoid:
        index.add(text)
    tickets: list[Ticket] = []
    while len(tickets) < n:
        ticket = make_ticket(rng, f"pool-{len(tickets):04d}")
        if not index.similar(ticket.message):
            index.add(ticket.message)
            tickets.append(ticket)
    return tickets


def ticket_row(message: str, label: dict, ticket_id: str, language: str) -> dict:
    return {"id": ticket_id, "language": language, "messages": to_messages(message, format_answer(label))}


# ---------------------------------------------------------------------------------------------------------
# Defects


def case_or_spacing_variant(message: str, rng: random.Random) -> str:
    """The same text to a human and to normalisation: other case or extra spaces."""
    choice = rng.randrange(3)
    if choice == 0:
        return message.lower()
    if choice == 1:
        return "  " + message.replace(" ", "  ", 3) + " "
    return message.upper()


def reword(message: str, rng: random.Random) -> str:
    """A small rewording: greeting or sign-off changed, a typo, a word swapped, punctuation changed."""
    words = message.split(" ")
    edits = rng.sample(["greeting", "closing", "typo", "swap", "punct", "filler"], k=2)
    for edit in edits:
        if edit == "greeting":
            words = [rng.choice(GREETINGS["en"])] + (words[1:] if words[0].endswith(",") else words)
        elif edit == "closing":
            words = words + [rng.choice(CLOSINGS["en"]), rng.choice(NAMES)]
        elif edit == "typo":
            i = rng.randrange(len(words))
            if len(words[i]) > 3:
                j = rng.randrange(1, len(words[i]) - 1)
                words[i] = words[i][:j] + words[i][j + 1] + words[i][j] + words[i][j + 2 :]
        elif edit == "swap":
            swaps = {"I": "i", "my": "our", "the": "this", "is": "was", "please": "pls", "cannot": "can't"}
            hits = [i for i, w in enumerate(words) if w in swaps]
            if hits:
                i = rng.choice(hits)
                words[i] = swaps[words[i]]
        elif edit == "punct":
            words[-1] = words[-1].rstrip(".!?") + rng.choice(["!!", "...", "?", ""])
        elif edit == "filler":
            words.insert(rng.randrange(1, len(words)), rng.choice(["really", "just", "also", "honestly"]))
    return " ".join(words)


def near_variant(message: str, rng: random.Random) -> str | None:
    """A reworded copy whose similarity to `message` lies in NEAR_DUP_RANGE, or None after 20 tries."""
    source = shingles(message)
    for _ in range(20):
        variant = reword(message, rng)
        if NEAR_DUP_RANGE[0] <= jaccard(source, shingles(variant)) < NEAR_DUP_RANGE[1]:
            return variant
    return None


OFF_TASK = (
    ("Write a short poem about {t}.",
     "Here is a short poem about {t}:\n\nSoft light on {t},\nquiet as the evening falls,\nthe day lets go."),
    ("What is a fun fact about {t}?", "A fun fact about {t}: people have written about it for centuries."),
    ("Translate 'good morning' into {l}.",
     "In {l}, 'good morning' is usually said as a short greeting in the morning."),
    ("Can you give me three tips for {a}?", "Three tips for {a}: start small, practise every day, and rest well."),
    ("Tell me a joke about {t}.", "Why did the {t} cross the road? To get to the other side of the story."),
    ("Summarise the plot of a story about {t} in one line.",
     "A story about {t} in one line: someone loses it and finds it again."),
)
TOPICS = ("the sea", "autumn", "cats", "mountains", "coffee", "trains", "the moon", "gardens", "rain", "bicycles")
LANGS = ("Spanish", "French", "German", "Italian", "Japanese")
ACTIVITIES = ("running", "baking bread", "learning chess", "sleeping better", "saving money", "writing")

OTHER_LANGUAGE = {
    "it": {
        "billing/refund_request": "Vorrei un rimborso per il mio {p}, non funziona come mi aspettavo.",
        "shipping/late_delivery": "Il mio {p} non è ancora arrivato e sono passati dieci giorni.",
        "shipping/damaged_item": "Il {p} è arrivato rotto, la scatola era schiacciata.",
        "technical/connectivity": "Il mio {p} non si collega al Bluetooth, ho già provato tutto.",
        "billing/double_charge": "Mi avete addebitato due volte il {p}, per favore controllate.",
    },
    "pt": {
        "billing/refund_request": "Quero um reembolso do meu {p}, não é o que eu esperava.",
        "shipping/late_delivery": "O meu {p} ainda não chegou e já passou uma semana.",
        "shipping/damaged_item": "O {p} chegou partido, a caixa estava amassada.",
        "technical/connectivity": "O meu {p} não se liga ao Bluetooth, já tentei de tudo.",
        "billing/double_charge": "Cobraram-me duas vezes pelo {p}, por favor verifiquem.",
    },
    "nl": {
        "billing/refund_request": "Ik wil mijn geld terug voor de {p}, het is niet wat ik verwachtte.",
        "shipping/late_delivery": "Mijn {p} is nog steeds niet aangekomen, het is al een week te laat.",
        "shipping/damaged_item": "De {p} kwam kapot aan, de doos was ingedeukt.",
        "technical/connectivity": "Mijn {p} maakt geen verbinding met Bluetooth, ik heb alles geprobeerd.",
        "billing/double_charge": "Ik heb twee keer betaald voor de {p}, kunt u dat nakijken?",
    },
}

LOG_LINES = ("2024-05-0{d} 10:{m:02d}:11 ERROR sync failed: timeout after 30000 ms (retry {r})",
             "2024-05-0{d} 10:{m:02d}:12 WARN  battery at {r}% while charging, temperature normal",
             "2024-05-0{d} 10:{m:02d}:13 INFO  reconnecting to access point, attempt {r}")


def malformed_line(ticket: Ticket, rng: random.Random, kind: str) -> str:
    """One broken line of the given kind, built from a real ticket so it looks like the rest."""
    row = ticket_row(ticket.message, ticket.label, ticket.id, ticket.language)
    messages = row["messages"]
    if kind == "invalid_json":
        text = json.dumps(row, ensure_ascii=False)
        return text[: rng.randrange(20, len(text) - 5)]
    if kind == "missing_role":
        del messages[1]["role"]
    elif kind == "unknown_role":
        messages[2]["role"] = rng.choice(["agent", "bot", "support"])
    elif kind == "empty_assistant":
        messages[2]["content"] = rng.choice(["", " "])
    elif kind == "last_turn_not_assistant":
        messages.append({"role": "user", "content": "Thanks!"})
    elif kind == "not_object":
        return json.dumps(messages, ensure_ascii=False)
    return json.dumps(row, ensure_ascii=False, separators=(",", ":"))


MALFORMED_KINDS = {"invalid_json": 30, "missing_role": 20, "unknown_role": 10, "empty_assistant": 25,
                   "last_turn_not_assistant": 10, "not_object": 5}


# ---------------------------------------------------------------------------------------------------------
# The pool


def insert_after(rows: list[PoolRow], new: PoolRow, source_index: int, rng: random.Random) -> None:
    """Insert `new` at a random position after `rows[source_index]` (copies always come after their source)."""
    rows.insert(rng.randrange(source_index + 1, len(rows) + 1), new)


def build_pool(gold: list[Ticket], dev: list[Ticket], seed: int = SEED) -> tuple[list[str], list[dict]]:
    """(JSONL lines of the pool, planted defects as sidecar rows with 1-based line numbers)."""
    rng = random.Random(seed)
    tickets = clean_tickets(rng, BASE_SIZE, avoid=[t.message for t in gold + dev])
    rows = [PoolRow(row=ticket_row(t.message, t.label, t.id, t.language)) for t in tickets]
    free = list(range(len(rows)))  # clean rows not yet used as a defect or a source
    rng.shuffle(free)

    def take() -> int:
        return free.pop()

    def position(row: PoolRow) -> int:
        return next(i for i, r in enumerate(rows) if r is row)

    # 1) in-place defects on clean rows
    for _ in range(PLANTED["wrong_label"] // 2):
        i = take()
        t = tickets[i]
        bad = wrong_label(t.label, rng)
        rows[i] = PoolRow(row=ticket_row(t.message, bad, t.id, t.language), defect="wrong_label",
                          detail={"correct": format_answer(t.label)})
    for _ in range(PLANTED["pii"]):
        i = take()
        t = tickets[i]
        kinds = rng.sample(list(PII_SENTENCES), k=rng.choice([1, 1, 2]))
        values = {kind: fake_pii(kind, rng) for kind in kinds}
        message = t.message + " " + " ".join(rng.choice(PII_SENTENCES[k]).format(v=v) for k, v in values.items())
        label = dict(t.label)
        in_answer = rng.random() < 0.33
        if in_answer:
            kind, value = next(iter(values.items()))
            label["summary"] = (label["summary"][:-1] + f" (contact: {value}).")[:120]
        rows[i] = PoolRow(row=ticket_row(message, label, t.id, t.language), defect="pii",
                          detail={"values": values, "in_answer": in_answer})
    for _ in range(PLANTED["truncated_answer"]):
        i = take()
        t = tickets[i]
        row = ticket_row(t.message, t.label, t.id, t.language)
        answer = row["messages"][-1]["content"]
        row["messages"][-1]["content"] = answer[: rng.randrange(10, len(answer) - 2)]
        rows[i] = PoolRow(row=row, defect="truncated_answer")
    for _ in range(PLANTED["overlong"]):
        i = take()
        t = tickets[i]
        log = "\n".join(rng.choice(LOG_LINES).format(d=rng.randrange(1, 9), m=rng.randrange(60), r=rng.randrange(100))
                        for _ in range(rng.randrange(40, 80)))
        message = f"{t.message} Here is the full log from the device:\n{log}"
        rows[i] = PoolRow(row=ticket_row(message, t.label, t.id, t.language), defect="overlong")
    # 2) copies of earlier clean rows (inserting shifts positions, so sources are held as objects)
    sources = [rows[i] for i in reversed(free)]
    for n in range(PLANTED["exact_duplicate"]):
        source = sources.pop()
        copy = json.loads(json.dumps(source.row))
        if n % 2:
            copy["messages"][1]["content"] = case_or_spacing_variant(copy["messages"][1]["content"], rng)
        insert_after(rows, PoolRow(row=copy, defect="exact_duplicate", source=id(source)), position(source), rng)
    copies = 0
    while copies < PLANTED["near_duplicate"] + PLANTED["wrong_label"] // 2:
        source = sources.pop()
        message = source.row["messages"][1]["content"]
        if source.row["language"] != "en":
            continue
        variant = near_variant(message, rng)
        if variant is None:
            continue
        label = json.loads(source.row["messages"][2]["content"])
        kind = "near_duplicate"
        detail = {"similarity": round(jaccard(shingles(message), shingles(variant)), 3)}
        if copies >= PLANTED["near_duplicate"]:
            kind = "wrong_label"
            detail["correct"] = format_answer(label)
            label = wrong_label(label, rng)
        new = PoolRow(row=ticket_row(variant, label, source.row["id"] + "b", "en"), defect=kind, detail=detail,
                      source=id(source))
        insert_after(rows, new, position(source), rng)
        copies += 1
    # 3) new rows: gold leaks, off-task, other languages, malformed lines
    for n in range(PLANTED["test_overlap"]):
        t = gold[rng.randrange(len(gold))]
        message = t.message if n % 2 == 0 else (near_variant(t.message, rng) or t.message)
        new = PoolRow(row=ticket_row(message, t.label, f"leak-{n:02d}", t.language), defect="test_overlap",
                      detail={"gold_id": t.id})
        rows.insert(rng.randrange(len(rows) + 1), new)
    for n in range(PLANTED["off_task"]):
        question, answer = rng.choice(OFF_TASK)
        slots = {"t": rng.choice(TOPICS), "l": rng.choice(LANGS), "a": rng.choice(ACTIVITIES)}
        row = {"id": f"offtask-{n:03d}", "language": "en",
               "messages": to_messages(question.format(**slots), answer.format(**slots))}
        rows.insert(rng.randrange(len(rows) + 1), PoolRow(row=row, defect="off_task"))
    for n in range(PLANTED["other_language"]):
        lang = rng.choice(list(OTHER_LANGUAGE))
        category = rng.choice(list(OTHER_LANGUAGE[lang]))
        product = rng.choice(CATEGORY_PRODUCTS[category])
        label = {"category": category,
                 "priority": decide_priority(category, hazard=False, deadline=False, no_rush=False),
                 "product": product, "sentiment": rng.choice(["negative", "neutral"]), "order_id": None,
                 "summary": f"Customer writes in {lang} about the {product}."}
        message = OTHER_LANGUAGE[lang][category].format(p=product)
        if rng.random() < 0.5:
            message += f" {rng.choice(NAMES)}"
        row = ticket_row(message, label, f"lang-{n:03d}", lang)
        rows.insert(rng.randrange(len(rows) + 1), PoolRow(row=row, defect="other_language", detail={"language": lang}))
    kinds = [k for k, n in MALFORMED_KINDS.items() for _ in range(n)]
    for n, kind in enumerate(kinds):
        ticket = make_ticket(rng, f"bad-{n:03d}")
        rows.insert(rng.randrange(len(rows) + 1),
                    PoolRow(line_text=malformed_line(ticket, rng, kind), defect="malformed", detail={"how": kind}))
    # 4) lines and sidecar
    line_of = {id(r): i + 1 for i, r in enumerate(rows)}
    lines, defects = [], []
    for i, r in enumerate(rows, start=1):
        lines.append(r.line_text if r.line_text is not None
                     else json.dumps(r.row, ensure_ascii=False, separators=(",", ":")))
        if r.defect:
            entry = {"line": i, "kind": r.defect, **r.detail}
            if r.source is not None:
                entry["source_line"] = line_of[r.source]
            defects.append(entry)
    return lines, defects

