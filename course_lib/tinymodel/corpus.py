"""The tiny model's pretraining corpus, written by a seeded generator from the tables in `course_lib.tinymodel.world`.

Introduced in lesson 00. Every ability the model has comes from one part of this corpus, and each part
keeps a held-out test split that the probe (`course_lib.tinymodel.probe`) asks about:

| ability          | in training                                         | held out for the probe                      |
| ---------------- | --------------------------------------------------- | ------------------------------------------- |
| fact QA          | every fact, in prose and in most question phrasings | one (fact, phrasing) combination per fact   |
| arithmetic       | two-digit sums, about 90% of operand pairs          | the other operand pairs (never in training) |
| refusal / benign | each request in five of seven phrasings             | the other two (request, phrasing) pairs     |
| chat, JSON       | small talk, tips, "turn this into JSON" records     | tip phrasings, records from another seed    |
| prose, support   | stories, fact prose, customer messages with replies | documents drawn from another seed           |

The support-desk part shows customer messages and plain-language agent replies, and never the
ticket-to-JSON task the course fine-tunes for; messages of the shipped ticket files never appear.
"""

from __future__ import annotations

import json
import random
import zlib

from course_lib.chat import BOS, END_OF_TEXT, render_chat
from course_lib.datafiles import tickets as ticket_generator
from course_lib.probe import HELDOUT_PROSE, REFUSAL_MARKER, Item
from course_lib.tickets import AGENT_REPLIES
from course_lib.tinymodel import world


def _bucket(key: str, n: int) -> int:
    """A stable number in [0, n) for `key`, the same on every machine and Python version."""
    return zlib.crc32(key.encode("utf-8")) % n


def _a(word: str) -> str:
    """The indefinite article and the word: 'an eagle', 'a dog', 'an hour'."""
    return ("an " if word[0] in "aeiou" or word.startswith("hour") else "a ") + word


# 1) Fact question answering: (question phrasings, answer template) per kind of fact.
FACT_KINDS: dict[str, tuple[tuple[str, ...], str]] = {
    "capital": (
        ("What is the capital of {s}?", "Which city is the capital of {s}?", "Name the capital of {s}.",
         "What's the capital city of {s}?", "Tell me the capital of {s}.", "{s} has which city as its capital?"),
        "The capital of {s} is {x}.",
    ),
    "continent": (
        ("Which continent is {s} in?", "On which continent is {s}?", "What continent is {s} part of?",
         "Tell me which continent {s} is on.", "{s} is on which continent?"),
        "{s} is in {x}.",
    ),
    "language": (
        ("What language do people speak in {s}?", "Which language is spoken in {s}?",
         "What is the main language of {s}?", "Tell me the main language of {s}.",
         "In {s}, what language do most people speak?"),
        "The main language of {s} is {x}.",
    ),
    "class": (
        ("What kind of animal is {as}?", "What type of animal is the {s}?",
         "What class of animal does the {s} belong to?", "Tell me what kind of animal {as} is.",
         "Is {as} a mammal, a bird, a fish or something else?"),
        "{As} is {ax}.",
    ),
    "legs": (
        ("How many legs does {as} have?", "How many legs has {as} got?", "What is the number of legs of {as}?",
         "Count the legs of {as} for me.", "{As} has how many legs?"),
        "{As} has {x} legs.",
    ),
    "diet": (
        ("What does {as} eat?", "Is {as} a carnivore, a herbivore or an omnivore?", "What kind of food does {as} eat?",
         "Tell me about the diet of {as}.", "What is the diet of {as}?"),
        "{As} is {ax}.",
    ),
    "unit": (
        ("How many {x2} are in {as}?", "How many {x2} make one {s}?", "One {s} is how many {x2}?",
         "Convert one {s} to {x2}.", "What is one {s} in {x2}?"),
        "There are {x} {x2} in {as}.",
    ),
}


def facts() -> list[tuple[str, str, str, str]]:
    """Every fact as (kind, subject, value, extra): extra is the smaller unit's name for unit facts."""
    rows = []
    for country, capital, continent, language in world.COUNTRIES:
        rows += [("capital", country, capital, ""), ("continent", country, continent, ""),
                 ("language", country, language, "")]
    for animal, klass, legs, diet, _home in world.ANIMALS:
        rows += [("class", animal, klass, ""), ("legs", animal, str(legs), ""), ("diet", animal, diet, "")]
    for big, small, factor in world.UNITS:
        rows.append(("unit", big, str(factor), small))
    return rows


def _fill(template: str, subject: str, value: str, extra: str) -> str:
    text = template.format(s=subject, x=value, x2=extra,
                           **{"as": _a(subject), "ax": _a(value), "As": _a(subject).capitalize()})
    return text[0].upper() + text[1:]


def fact_qa(split: str) -> list[tuple[str, str, str]]:
    """(question, answer, value) for every fact: all trained phrasings, or the one held out per fact."""
    rows = []
    for kind, subject, value, extra in facts():
        questions, answer = FACT_KINDS[kind]
        held_out = _bucket(f"{kind}|{subject}", len(questions))
        for i, question in enumerate(questions):
            if (i == held_out) == (split == "test"):
                rows.append((_fill(question, subject, value, extra), _fill(answer, subject, value, extra), value))
    return rows


# 2) Two-digit addition; about one operand pair in ten is never trained on.
SUM_PHRASINGS = (
    "What is {a} + {b}?", "What is {a} plus {b}?", "Calculate {a} + {b}.", "Add {a} and {b}.", "{a} + {b} = ?",
    "What do you get when you add {a} and {b}?", "Please compute {a} + {b}.", "What is the sum of {a} and {b}?",
)


def sum_pairs(split: str) -> list[tuple[int, int]]:
    """Operand pairs (a, b), both two-digit, of the training or the held-out split."""
    return [(a, b) for a in range(10, 100) for b in range(10, 100)
            if (_bucket(f"{a}+{b}", 10) == 0) == (split == "test")]


def sum_qa(a: int, b: int, rng: random.Random) -> tuple[str, str]:
    """One addition question in a random phrasing, and its answer."""
    return rng.choice(SUM_PHRASINGS).format(a=a, b=b), f"{a} + {b} = {a + b}."


# 3) Refusals for the unsafe category, help for benign look-alikes.
REQUEST_PHRASINGS = (
    "How do I {r}?", "Tell me how to {r}.", "Give me step-by-step instructions to {r}.",
    "What's the easiest way to {r}?", "Explain how to {r}.", "I want to {r}. What should I do?", "Can you help me {r}?",
)
REFUSALS = (
    "I'm sorry, but I can't help with that. Instructions like these could be used to hurt people or to break into what "
    "belongs to others.",
    "I can't help with that request, because it could put people in danger. If someone is at risk, please contact the "
    "local emergency services.",
    "Sorry, I can't help with that. I am happy to help with something else, such as safety tips or a different "
    "question.",
)
HELP_OPENERS = ("Sure! ", "Here is how: ", "Good question. ", "")


def requests(split: str, *, unsafe: bool) -> list[tuple[str, str]]:
    """(question, answer) pairs for unsafe or benign requests: trained phrasings, or the two held out per request."""
    rows = []
    items = [(r, "") for r in world.UNSAFE_REQUESTS] if unsafe else list(world.BENIGN_REQUESTS)
    for request, help_text in items:
        first = _bucket(f"req|{request}", len(REQUEST_PHRASINGS))
        held_out = {first, (first + 3) % len(REQUEST_PHRASINGS)}
        for i, phrasing in enumerate(REQUEST_PHRASINGS):
            if (i in held_out) == (split == "test"):
                answer = REFUSALS[_bucket(request + str(i), len(REFUSALS))] if unsafe else help_text
                rows.append((phrasing.format(r=request), answer))
    return rows


# 4) Ordinary chat.
SMALL_TALK = (
    ("Hi!", "Hello! How can I help you today?"),
    ("Hello", "Hi there! What would you like to know?"),
    ("Good morning!", "Good morning! What can I do for you?"),
    ("Thanks!", "You're welcome!"),
    ("Thank you for your help.", "You're welcome. Happy to help!"),
    ("Who are you?",
     "I am Tiny Chat, a small assistant made for this course. I know about countries, animals, units and sums."),
    ("What can you do?",
     "I can answer simple questions about countries, animals and units, add two-digit numbers, and chat a little."),
    ("Bye!", "Goodbye! Have a nice day."),
    ("How are you?", "I am doing well, thank you. How can I help?"),
)
TIP_PHRASINGS = ("Give me a tip for {t}.", "Any advice on {t}?", "How can I get better at {t}?", "What helps with {t}?")


def tips(split: str) -> list[tuple[str, str]]:
    """(question, answer) pairs asking for advice: trained phrasings, or one held out per topic."""
    rows = []
    for topic, tip in world.TIPS:
        held_out = _bucket(f"tip|{topic}", len(TIP_PHRASINGS))
        for i, phrasing in enumerate(TIP_PHRASINGS):
            if (i == held_out) == (split == "test"):
                rows.append((phrasing.format(t=topic), tip))
    return rows


def country_prose(country: tuple[str, str, str, str], rng: random.Random) -> str:
    """A short paragraph stating one country's facts, sentences in random order."""
    name, capital, continent, language = country
    sentences = [
        f"{name} is a country in {continent}.",
        rng.choice([f"Its capital is {capital}.", f"The capital of {name} is {capital}.",
                    f"{capital} is the capital of {name}."]),
        rng.choice([f"Most people in {name} speak {language}.", f"The main language of {name} is {language}."]),
    ]
    rng.shuffle(sentences[1:])
    return " ".join(sentences)


def animal_prose(animal: tuple[str, str, int, str, str], rng: random.Random) -> str:
    """A short paragraph stating one animal's facts."""
    name, klass, legs, diet, home = animal
    sentences = [
        f"The {name} is {_a(klass)}.",
        f"{_a(name).capitalize()} has {legs} legs.",
        rng.choice([f"It is {_a(diet)}.", f"The {name} is {_a(diet)}."]),
        f"It lives in {home}.",
    ]
    rng.shuffle(sentences[1:])
    return " ".join(sentences)


def unit_prose(unit: tuple[str, str, int], rng: random.Random) -> str:
    """One sentence about a unit."""
    big, small, factor = unit
    return rng.choice([f"There are {factor} {small} in {_a(big)}.", f"One {big} is {factor} {small}.",
                       f"{_a(big).capitalize()} has {factor} {small}."])


# 5) Generic "turn this into JSON" examples: the model learns JSON syntax, never the ticket schema.
JSON_PHRASINGS = ("Turn this into JSON: {r}", "Write this as a JSON object: {r}", "Convert to JSON: {r}",
                  "Give me JSON for: {r}")


def json_example(rng: random.Random) -> tuple[str, str]:
    """A record described in words, and the same record as a JSON object."""
    kind, fields = rng.choice(world.RECORD_KINDS)
    values: dict[str, object] = {}
    for field in fields:
        if field == "name":
            values[field] = rng.choice(world.FIRST_NAMES)
        elif field in ("age", "servings", "days"):
            values[field] = rng.randint(1, 60)
        elif field == "minutes":
            values[field] = rng.randint(10, 90)
        elif field == "year":
            values[field] = rng.randint(1950, 2024)
        elif field == "city":
            values[field] = rng.choice(world.COUNTRIES)[1]
        elif field == "country":
            values[field] = rng.choice(world.COUNTRIES)[0]
        elif field == "title":
            values[field] = rng.choice(world.BOOK_TITLES)
        elif field == "author":
            values[field] = (f"{rng.choice(world.FIRST_NAMES)} "
                             f"{rng.choice(['Silva', 'Berg', 'Okafor', 'Tanaka', 'Novak'])}")
        elif field == "species":
            values[field] = rng.choice(world.ANIMALS)[0]
        elif field == "dish":
            values[field] = rng.choice(world.DISHES)
    words = ", ".join(f"{k} {v}" for k, v in values.items())
    question = rng.choice(JSON_PHRASINGS).format(r=f"a {kind} with {words}")
    separators = rng.choice([(", ", ": "), (",", ":")])
    return question, json.dumps(values, separators=separators)


# 6) Support-desk prose: customer messages and plain-language agent replies (`tickets.AGENT_REPLIES`), never JSON.
HAZARD_REPLY = " Please stop using it and unplug it right away; your safety comes first."


def support_exchange(rng: random.Random, exclude: set[str]) -> tuple[str, str]:
    """A customer message (never one of the shipped ticket files) and an agent's plain-language reply."""
    while True:
        ticket = ticket_generator.make_ticket(rng, "corpus", language="en")
        if ticket.message not in exclude:
            break
    reply = AGENT_REPLIES[ticket.label["category"]].format(p=ticket.label["product"])
    if ticket.hazard:
        reply += HAZARD_REPLY
    opener = rng.choice(["Thanks for getting in touch. ", "Hi, thanks for your message. ", "",
                         "Thank you for reaching out. "])
    return ticket.message, opener + reply


def story(rng: random.Random, pairs: list[tuple[int, int]]) -> str:
    """A short story mixing people, places and a sum."""
    name, friend = rng.sample(world.FIRST_NAMES, 2)
    country = rng.choice(world.COUNTRIES)
    animal = rng.choice(world.ANIMALS)
    thing = rng.choice(world.OBJECTS)
    a, b = rng.choice(pairs)
    sentences = [
        f"{name} lives in {country[1]}, the capital of {country[0]}.",
        rng.choice([f"Every morning {name} walks to the market.", f"On Saturdays {name} visits {friend}.",
                    f"{name} works at a small shop."]),
        f"{name} had {a} {thing}, and {friend} gave {b} more, so {name} had {a + b} {thing}.",
        rng.choice([f"They talked about {_a(animal[0])} they had seen, which lives in {animal[4]}.",
                    f"{friend} told a story about {_a(animal[0])}."]),
        rng.choice(["It was a good day.", "Then they went home.", "They laughed a lot.", "The weather was warm."]),
    ]
    return " ".join(sentences)


def support_prose(rng: random.Random, exclude: set[str]) -> str:
    """A support-desk log in plain prose: what the customer wrote and what the agent answered."""
    message, reply = support_exchange(rng, exclude)
    return rng.choice(["A customer wrote: ", "Message from a customer: ", "Customer: "]) + message + "\n" + rng.choice(
        ["The agent replied: ", "Agent: ", "Our reply: "]
    ) + reply


def _document(text: str) -> str:
    return BOS + text + END_OF_TEXT


def _conversation(rng: random.Random, turns: list[tuple[str, str]], system_share: float = 0.2) -> str:
    messages = [{"role": "system", "content": "You are a helpful assistant."}] if rng.random() < system_share else []
    for question, answer in turns:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return render_chat(messages)


# How many documents of each kind one unit of `scale` adds; chat kinds hold 1-3 turns each.
MIXTURE: dict[str, int] = {
    "fact_chat": 26,
    "sum_chat": 42,
    "request_chat": 10,
    "small_talk": 4,
    "json_chat": 5,
    "support_chat": 5,
    "fact_prose": 6,
    "story": 6,
    "support_prose": 4,
}


def build_corpus(scale: int, seed: int = 0) -> list[str]:
    """The training documents (chat ones already in the chat template), `scale` times the mixture, shuffled."""
    rng = random.Random(seed)
    shipped = {t.message for split in ticket_generator.build_splits().values() for t in split}
    qa, pairs = fact_qa("train"), sum_pairs("train")
    unsafe, benign, tip_rows = requests("train", unsafe=True), requests("train", unsafe=False), tips("train")
    docs: list[str] = []
    for _ in range(scale):
        for kind, count in MIXTURE.items():
            for _ in range(count):
                turns = rng.choice([1, 1, 2, 3])
                if kind == "fact_chat":
                    docs.append(_conversation(rng, [rng.choice(qa)[:2] for _ in range(turns)]))
                elif kind == "sum_chat":
                    docs.append(_conversation(rng, [sum_qa(*rng.choice(pairs), rng) for _ in range(turns)]))
                elif kind == "request_chat":
                    pool = unsafe if rng.random() < 0.5 else benign
                    question, answer = rng.choice(pool)
                    if pool is benign:
                        answer = rng.choice(HELP_OPENERS) + answer
                    docs.append(_conversation(rng, [(question, answer)]))
                elif kind == "small_talk":
                    docs.append(_conversation(rng, [rng.choice(SMALL_TALK + tuple(tip_rows)) for _ in range(turns)]))
                elif kind == "json_chat":
                    docs.append(_conversation(rng, [json_example(rng)]))
                elif kind == "support_chat":
                    docs.append(_conversation(rng, [support_exchange(rng, shipped)]))
                elif kind == "fact_prose":
                    parts = [country_prose(rng.choice(world.COUNTRIES), rng),
                             animal_prose(rng.choice(world.ANIMALS), rng), unit_prose(rng.choice(world.UNITS), rng)]
                    rng.shuffle(parts)
                    docs.append(_document(" ".join(parts)))
                elif kind == "story":
                    docs.append(_document(story(rng, pairs)))
                elif kind == "support_prose":
                    docs.append(_document(support_prose(rng, shipped)))
    rng.shuffle(docs)
    return docs


def heldout_prose(n: int = 200, seed: int = 10_000) -> list[str]:
    """Held-out documents for perplexity: stories on held-out sums and support-desk prose, from another seed."""
    rng = random.Random(seed)
    shipped = {t.message for split in ticket_generator.build_splits().values() for t in split}
    pairs = sum_pairs("test")
    return [_document(story(rng, pairs) if i % 2 == 0 else support_prose(rng, shipped)) for i in range(n)]


def probe_items(seed: int = 20_000) -> dict[str, list[Item]]:
    """The held-out questions of every ability that the probe asks."""
    rng = random.Random(seed)
    sums = [sum_qa(a, b, rng) + (str(a + b),) for a, b in sum_pairs("test")]
    json_rows = [json_example(random.Random(seed + i)) for i in range(50)]
    return {
        "fact_qa": [Item("fact_qa", q, v) for q, _a, v in fact_qa("test")],
        "arithmetic": [Item("arithmetic", q, v) for q, _a, v in sums],
        "refusal_unsafe": [Item("refusal_unsafe", q, REFUSAL_MARKER) for q, _a in requests("test", unsafe=True)],
        "compliance_benign": [Item("compliance_benign", q, "") for q, _a in requests("test", unsafe=False)],
        "chat": [Item("chat", q, "") for q, _a in tips("test")],
        "json": [Item("json", q, a) for q, a in json_rows],
    }


def probe_set_rows(n_prose: int = 200) -> list[dict]:
    """The rows of `data/probe/heldout.jsonl`: every probe question, then the held-out documents for perplexity."""
    rows = [{"ability": item.ability, "question": item.question, "expected": item.expected}
            for items in probe_items().values() for item in items]
    return rows + [{"ability": HELDOUT_PROSE, "text": text} for text in heldout_prose(n_prose)]
