"""Labelled trap sets that measure curation's precision where real data fools simple rules. Lesson 02.

`near_duplicate_traps` builds prompts with known duplicate pairs in three groups:
- "preamble": every prompt starts with the same long tool description, then asks its own question;
- "math": word problems, each with its inverse (the answer given, a quantity asked; half of them as
  MetaMathQA's FOBAR writes it, "... If we know the answer to the above question is 17, what is x?") and
  some paraphrases;
- "plain": ordinary requests and paraphrases of some of them.
A paraphrase is the same request with two light edits (a greeting, a sign-off, a filler word, other punctuation,
a "please"). `pii_traps` builds sentences with personal data in them and sentences that only look like it to a
rule (arithmetic, decimals, hex colours, code, number tables, dates, versions). Both are seeded, so every run
gives the same sets; `score_pairs` and `score_pii` measure a detector on them.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from course_lib.noise import PII_SENTENCES, fake_pii

TOOLS = (
    ("get_weather", "city: string", "the current weather and temperature in a city"),
    ("search_flights", "origin: string, destination: string, date: string", "flights between two airports on a day"),
    ("convert_currency", "amount: number, source: string, target: string", "an amount of money in another currency"),
    ("find_restaurant", "city: string, cuisine: string", "restaurants of a cuisine in a city, with ratings"),
    ("translate", "text: string, language: string", "the text translated into the language"),
)
PREAMBLE = ("You are a helpful assistant with access to the following functions. Use them if required.\n"
            + "\n".join(f'{{"name": "{n}", "description": "Returns {d}.", "parameters": {{{p}}}}}' for n, p, d in TOOLS)
            + "\nCall a function by replying with its name and arguments as JSON; otherwise answer in plain words.\n\n")
TOOL_QUESTIONS = (
    "What's the weather like in Lisbon right now?", "Can you find me a flight from Oslo to Rome next Friday?",
    "How much is 250 US dollars in Japanese yen?", "Recommend a good Thai restaurant near the centre of Hanoi.",
    "Translate 'where is the train station' into German.", "Should I bring an umbrella to Dublin tomorrow morning?",
    "Are there any direct flights between Lima and Quito this weekend?", "Convert 80 euros to British pounds for me.",
    "I want to eat Ethiopian food in Denver tonight, where should I go?",
    "How do you say 'thank you very much' in Swahili?",
    "Is it warm enough for the beach in Perth on Saturday?",
    "Book-keeping question: what is 1200 Swiss francs in dollars?",
    "Which Korean places in Seoul have the best ratings?",
    "Please translate this menu line into French: grilled fish with lemon.",
    "Tell me a fun fact about octopuses.", "What time is sunset in Reykjavik in December?",
    "Find the cheapest way to fly from Accra to Nairobi in March.",
    "My friend in Tokyo asks how cold it gets there in January.",
    "Give me a vegetarian restaurant in Porto with outdoor seating.",
    "How many Mexican pesos do I get for 40 Canadian dollars?",
    "Write a haiku about the first snow of winter.", "Which airlines fly from Riga to Helsinki on Sundays?",
    "Translate 'the meeting is postponed until next week' into Spanish.",
    "What's the forecast for Cairo over the next three days?",
    "Suggest a Greek taverna in Melbourne for a birthday dinner.", "What is the capital of Mongolia?",
    "Is there a night train or a flight from Vienna to Krakow?", "Exchange rate check: 500 Indian rupees to euros.",
    "Where can I get good ramen in Sapporo late at night?", "Translate 'please keep the change' into Japanese.",
)
NAMES = ("Maria", "James", "Aiko", "Tom", "Priya", "Lukas", "Fatima", "Chen", "Olivia", "Diego")
THINGS = ("apples", "stickers", "marbles", "books", "pencils", "cookies")
MATH = (  # (problem, its inverse, the problem's worked answer, the inverse's)
    ("{a} has {x} {t}. {b} gives {a} {y} more {t}. How many {t} does {a} have now?",
     "{a} has some {t}. {b} gives {a} {y} more {t}, and now {a} has {s} {t}. How many {t} did {a} have at first?",
     "{x} + {y} = {s}, so {a} has {s} {t}.", "{s}-{y} = {x}, so {a} had {x} {t} at first."),
    ("A shop sells {t} in packs of {x}. Sam buys {y} packs. How many {t} does Sam buy?",
     "A shop sells {t} in packs of {x}. Sam buys {p} {t} in whole packs. How many packs does Sam buy?",
     "{x} * {y} = {p}, so Sam buys {p} {t}.", "{p} / {x} = {y}, so Sam buys {y} packs."),
    ("{a} read {x} pages on Monday and {y} pages on Tuesday. How many pages did {a} read in the two days?",
     "{a} read {x} pages on Monday and some more on Tuesday, {s} pages in the two days. How many pages did {a} read on "
     "Tuesday?",
     "{x} + {y} = {s} pages.", "{s}-{x} = {y} pages on Tuesday."),
    ("A train travels at {x} km per hour for {y} hours. How far does it travel?",
     "A train travels at {x} km per hour and covers {p} km. For how many hours does it travel?",
     "{x} * {y} = {p} km.", "{p} / {x} = {y} hours."),
)
PLAIN = (
    "Write a short thank-you note to a neighbour who helped me move house last weekend.",
    "Explain the difference between a virus and a bacterium in simple words for a ten-year-old.",
    "Give me three ideas for a vegetarian dinner that can be cooked in under thirty minutes.",
    "Summarise the main causes of the French Revolution in one paragraph for a history class.",
    "Suggest a name for a puppy that is friendly, short and easy to call out in a park.",
    "Draft a polite e-mail asking my manager to move our meeting from Tuesday to Thursday.",
    "What are the pros and cons of renting versus buying a flat in a big city?",
    "Write a limerick about a cat who is afraid of cucumbers.",
    "How should I prepare for a job interview at a small design studio?",
    "List five exercises I can do at my desk to ease a stiff neck.",
    "Why is the sky blue during the day and red at sunset?",
    "Create a packing list for a week of hiking in the mountains in autumn.",
    "Rewrite this sentence to sound more formal: we can't make it on Monday, sorry.",
    "Compare Python and JavaScript for someone who wants to build websites.",
    "What is a good way to start learning to play the guitar as an adult?",
    "Write a two-sentence horror story set in a library.",
    "Explain how a bill becomes a law in a parliamentary system.",
    "Give me a recipe for pancakes without eggs or milk.",
    "What should I consider before adopting a rescue dog?",
    "Describe the water cycle as if you were a raindrop.",
    "Plan a three-day trip to Kyoto for someone who loves gardens and temples.",
    "How do vaccines train the immune system?",
    "Write a product description for a bamboo toothbrush.",
    "What are some polite ways to decline a wedding invitation?",
    "Explain compound interest with a simple example.",
    "Suggest a weekly routine for a beginner who wants to run five kilometres.",
    "Why do onions make people cry when they are cut?",
    "Write an opening line for a mystery novel set on a cruise ship.",
    "What is the difference between weather and climate?",
    "Give me tips for keeping houseplants alive in a dark apartment.",
)
GREETINGS = ("Hi,", "Hello,", "Hey there,", "Good morning,")
CLOSINGS = ("Thanks!", "Thank you.", "Many thanks.", "Cheers!")
FILLERS = ("really", "just", "also", "quickly")


def paraphrase(text: str, rng: random.Random) -> str:
    """The same request with two light edits (greeting, sign-off, filler word, punctuation, please)."""
    out = text
    for edit in rng.sample(["greeting", "closing", "filler", "punct", "please"], k=2):
        words = out.split(" ")
        if edit == "greeting":
            out = f"{rng.choice(GREETINGS)} {out[0].lower()}{out[1:]}"
        elif edit == "closing":
            out = f"{out} {rng.choice(CLOSINGS)}"
        elif edit == "filler":
            words.insert(rng.randrange(1, len(words)), rng.choice(FILLERS))
            out = " ".join(words)
        elif edit == "punct":
            out = out.rstrip(".?!") + rng.choice(["!", "?", "...", ""])
        else:
            out = out.rstrip(".?!") + ", please" + out[-1]
    return out


@dataclass(frozen=True)
class TrapText:
    text: str
    group: str  # "preamble", "math" or "plain"
    cluster: int  # texts with the same cluster are duplicates of each other
    answer: str = ""  # an answer, for the release file; a paraphrase's answer is worded differently


def near_duplicate_traps(seed: int = 0, per_group: int = 30) -> list[TrapText]:
    """Prompts with known duplicates: 30 distinct prompts per group, a third of them paraphrased; in the math
    group `per_group` word problems, each with its inverse."""
    rng = random.Random(seed)
    texts: list[TrapText] = []
    cluster = 0

    def add(group: str, text: str, prefix: str = "", answer: str = "") -> None:
        nonlocal cluster
        answer = answer or f"Here is my answer to request {cluster}."
        texts.append(TrapText(prefix + text, group, cluster, answer))
        if cluster % 3 == 0:
            texts.append(TrapText(prefix + paraphrase(text, rng), group, cluster, f"Sure! {answer}"))
        cluster += 1

    for q in TOOL_QUESTIONS:  # 1) a shared tool description, then a question of its own
        add("preamble", q, PREAMBLE)
    for k in range(per_group):  # 2) a word problem and its inverse: same words, other numbers
        forward, inverse, worked, inverse_worked = rng.choice(MATH)
        a, b = rng.sample(NAMES, 2)
        x, y = rng.randrange(3, 60), rng.randrange(2, 30)
        slots = dict(a=a, b=b, t=rng.choice(THINGS), x=x, y=y, s=x + y, p=x * y)
        problem = forward.format(**slots)
        add("math", problem, answer=worked.format(**slots))
        if k % 2:  # the inverse as MetaMathQA's FOBAR writes it: a number becomes x, the answer is given
            result = x + y if "+" in worked else x * y
            inverse_text = (forward.replace("{x}", "x", 1).format(**slots)
                            + f" If we know the answer to the above question is {result}, what is the value of unknown "
                              "variable x?")
            texts.append(TrapText(inverse_text, "math", cluster, f"x = {x}"))
        else:
            texts.append(TrapText(inverse.format(**slots), "math", cluster, inverse_worked.format(**slots)))
        cluster += 1
    for q in PLAIN:  # 3) ordinary requests
        add("plain", q)
    return texts


def true_pairs(traps: Sequence[TrapText]) -> set[tuple[int, int]]:
    """(i, j), i < j, for every two texts of the same cluster."""
    members: dict[int, list[int]] = {}
    for i, t in enumerate(traps):
        members.setdefault(t.cluster, []).append(i)
    return {(a, b) for m in members.values() for k, a in enumerate(m) for b in m[k + 1:]}


def score_pairs(traps: Sequence[TrapText], found: Sequence[tuple[int, int, float]]) -> dict[str, dict]:
    """Precision and recall of the pairs found, overall ("all") and per group of the trap set."""
    truth = true_pairs(traps)
    flagged = {(i, j) for i, j, *_ in found}
    table = {}
    for group in ("all", "preamble", "math", "plain"):
        def ours(pair, group=group):
            return group == "all" or traps[pair[0]].group == group or traps[pair[1]].group == group
        f, t = {p for p in flagged if ours(p)}, {p for p in truth if ours(p)}
        table[group] = {"flagged": len(f), "true": len(t), "caught": len(f & t),
                        "precision": round(len(f & t) / len(f), 3) if f else None,
                        "recall": round(len(f & t) / len(t), 3) if t else None}
    return table


@dataclass(frozen=True)
class PiiTrap:
    text: str
    kinds: tuple[str, ...]  # the personal data in it; () for a trap


def pii_traps(seed: int = 0, n: int = 40) -> list[PiiTrap]:
    """`n` sentences of each kind of personal data, and `n` of each kind of look-alike (maths, code, tables)."""
    rng = random.Random(seed)
    traps = [PiiTrap(rng.choice(PII_SENTENCES[kind]).format(v=fake_pii(kind, rng)), (kind,))
             for kind in ("EMAIL", "PHONE", "CARD", "ADDRESS") for _ in range(n)]
    lookalikes: dict[str, Callable[[], str]] = {
        "subtraction": lambda: f"{rng.randrange(100, 999)},000-{rng.randrange(1000, 9999)} = ?",
        "sum": lambda: f"{rng.randrange(10**6, 10**9)} + {rng.randrange(10**6, 10**9)} = {rng.randrange(10**6, 10**9)}",
        "product": lambda: f"{rng.randrange(1000, 99999)} * {rng.randrange(1000, 99999)} = "
                           f"{rng.randrange(10**7, 10**9)}",
        "decimal": lambda: f"The value is {rng.randrange(10)}.{rng.randrange(10**9, 10**10)} to ten places.",
        "hex_colour": lambda: f"color: #{rng.randrange(16**6):06x}; background: "
                              f"#{rng.choice(['000000', 'ffffff', '0a0a0a'])};",
        "hex_code": lambda: f"mask = 0x{rng.randrange(16**8):08X}  # {rng.randrange(10**8, 10**9)}",
        "assignment": lambda: f"order_total = {rng.randrange(10**9, 10**10)}",
        "times_table": lambda: " ".join(str(k * rng.randrange(11, 99)) for k in range(1, 11)),
        "number_row": lambda: " | ".join(str(rng.randrange(100, 99999)) for _ in range(6)),
        "date_time": lambda: f"2024-{rng.randrange(1, 13):02d}-{rng.randrange(1, 29):02d} "
                             f"{rng.randrange(24):02d}:{rng.randrange(60):02d}:00",
        "version_ip": lambda: f"v{rng.randrange(10)}.{rng.randrange(20)}.{rng.randrange(99)} on "
                              f"192.168.{rng.randrange(256)}.{rng.randrange(256)}",
        "price": lambda: f"It cost ${rng.randrange(1000, 99999)}.{rng.randrange(100):02d} in total.",
    }
    traps += [PiiTrap(make(), ()) for make in lookalikes.values() for _ in range(n)]
    return traps


def score_pii(traps: Sequence[PiiTrap], find: Callable[[str], list]) -> dict[str, float | int]:
    """Precision (hits that are personal data of the planted kind) and recall of a finder on the trap sample."""
    hits = correct = planted = caught = 0
    for trap in traps:
        kinds = [h.kind for h in find(trap.text)]
        hits += len(kinds)
        correct += sum(k in trap.kinds for k in kinds)
        planted += len(trap.kinds)
        caught += sum(k in kinds for k in trap.kinds)
    return {"hits": hits, "correct": correct, "precision": round(correct / hits, 3) if hits else None,
            "planted": planted, "recall": round(caught / planted, 3) if planted else None}


CODE_ROWS = (  # requests whose answers are full of numbers that are not personal data
    ("Give me the CSS for a black page with white text.", "body { background: #000000; color: #ffffff; }"),
    ("Print the 7 times table on one line.", "7 14 21 28 35 42 49 56 63 70"),
    ("What is 450,000 minus 2000?", "450,000-2000 = 448,000"),
    ("Write a Python constant for a 32-bit mask of all ones.", "MASK = 0xFFFFFFFF  # 4294967295"),
    ("Give pi to fifteen decimal places.", "3.141592653589793"),
)


def alpaca_release(seed: int = 0) -> list[dict]:
    """A public-style instruction set in Alpaca fields, answers under "response" as some releases name them:
    the near-duplicate traps (the tool description as the instruction, the question as the input), rows whose
    answers are maths and code, and one row with an e-mail address in it."""
    rows = []
    for t in near_duplicate_traps(seed):
        if t.text.startswith(PREAMBLE):
            rows.append({"instruction": PREAMBLE.strip(), "input": t.text[len(PREAMBLE):], "response": t.answer})
        else:
            rows.append({"instruction": t.text, "input": "", "response": t.answer})
    rows += [{"instruction": q, "input": "", "response": a} for q, a in CODE_ROWS]
    rows.append({"instruction": "Reply to the customer who wrote from maria.lopez42@example.com about a late parcel.",
                 "input": "", "response": "Dear Maria, we are sorry your parcel is late; it will arrive on Friday."})
    return rows


def write_release(path, seed: int = 0):
    """`alpaca_release(seed)` written as one indented JSON array, the way most public sets are released;
    returns the path."""
    import json
    from pathlib import Path

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(alpaca_release(seed), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
