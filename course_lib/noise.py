"""The pieces made-up ticket text is built from: names, greetings and sign-offs, fake personal data, wrong labels,
broken JSON and chatty wrappers.

The data generators (`course_lib.datafiles`) use them to write realistic messages and faulty answers; lessons use
them where they plant the same faults themselves (lesson 06's bad habits, lesson 07's behaviour tests).
"""

from __future__ import annotations

import random

from course_lib.curation.pii import luhn_ok
from course_lib.tickets import CATEGORIES, CATEGORY_PRODUCTS, PRIORITIES

# How customers open and sign a message, per language; then the name they sign with.
GREETINGS: dict[str, tuple[str, ...]] = {
    "en": ("Hi,", "Hello,", "Hi there,", "Dear support team,", "Hey,", "Good morning,"),
    "es": ("Hola,", "Buenos días,"),
    "fr": ("Bonjour,", "Madame, Monsieur,"),
    "de": ("Hallo,", "Guten Tag,"),
}
CLOSINGS: dict[str, tuple[str, ...]] = {
    "en": ("Thanks,", "Regards,", "Best,", "Cheers,"),
    "es": ("Saludos,",),
    "fr": ("Cordialement,",),
    "de": ("Viele Grüße,",),
}
NAMES = ("Maria", "James", "Aiko", "Tom", "Priya", "Lukas", "Fatima", "Chen", "Olivia", "Diego", "Sam", "Nora")


# ---------------------------------------------------------------------------------------------------------
# Faults: wrong labels, personal data, broken JSON, chatty wrappers


def wrong_label(label: dict, rng: random.Random) -> dict:
    """The label with its category or priority changed to another valid value."""
    label = dict(label)
    if rng.random() < 0.6:
        group = label["category"].split("/")[0]
        others = [c for c in CATEGORIES if c != label["category"] and label["product"] in CATEGORY_PRODUCTS[c]]
        same_group = [c for c in others if c.startswith(group + "/")]
        label["category"] = rng.choice(same_group or others)
    else:
        label["priority"] = rng.choice([p for p in PRIORITIES if p != label["priority"]])
    return label


def luhn_complete(digits: str) -> str:
    """`digits` followed by the check digit that makes the Luhn checksum pass."""
    return next(digits + d for d in "0123456789" if luhn_ok(digits + d))

STREETS = ("Baker", "Elm", "Maple", "Oak", "Station", "Church", "Mill", "Park", "High", "King", "Victoria")
STREET_TYPES = ("Street", "Road", "Avenue", "Lane", "Drive", "St", "Rd")
CITIES = ("Springfield", "Riverton", "London", "Leeds", "Bristol", "Austin", "Denver", "Dublin")
DOMAINS = ("example.com", "example.org", "mail.example.net", "inbox.test")


def fake_pii(kind: str, rng: random.Random) -> str:
    """A made-up but realistically formatted value of `kind`."""
    name = rng.choice(NAMES).lower()
    if kind == "EMAIL":
        sep = rng.choice([".", "_", ""])
        return (f"{name}{sep}{rng.choice(['smith', 'lopez', 'kim', 'novak', 'okafor'])}"
                f"{rng.randrange(100)}@{rng.choice(DOMAINS)}")
    if kind == "PHONE":
        formats = ["+1 {a} {b} {c}", "({a}) {b}-{c}", "{a}-{b}-{c}", "{a}.{b}.{c}", "+44 20 {b} {c}", "0049 30 {b}{c}"]
        a, b, c = rng.randrange(200, 999), rng.randrange(200, 999), rng.randrange(1000, 9999)
        return rng.choice(formats).format(a=a, b=b, c=c)
    if kind == "CARD":
        prefix = rng.choice(["4", "51", "55", "37"])
        length = 15 if prefix == "37" else 16
        digits = luhn_complete(prefix + "".join(str(rng.randrange(10)) for _ in range(length - len(prefix) - 1)))
        sep = rng.choice([" ", "-", ""])
        return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4)) if sep else digits
    if kind == "ADDRESS":
        return f"{rng.randrange(1, 999)} {rng.choice(STREETS)} {rng.choice(STREET_TYPES)}, {rng.choice(CITIES)}"
    raise ValueError(kind)

PII_SENTENCES = {
    "EMAIL": ("You can reach me at {v}.", "My email is {v}", "Reply to {v} please."),
    "PHONE": ("Call me on {v}.", "My number is {v}.", "Phone: {v}"),
    "CARD": ("I paid with card {v}.", "The card used was {v}.", "card number {v}"),
    "ADDRESS": ("I live at {v}.", "Please send it to {v}.", "My address is {v}."),
}
PROSE_BEFORE = ("Sure! Here is the triage:\n", "Here is the JSON you asked for:\n", "Of course. ", "Triage result:\n")
PROSE_AFTER = ("\nLet me know if you need anything else.", "\nI hope this helps!", "", "\nThis ticket looks important.")


def break_json(answer: str, rng: random.Random) -> str:
    """Invalid JSON of the kinds models write: single quotes, a trailing comma, a missing brace, or a cut-off end."""
    kind = rng.randrange(4)
    if kind == 0:
        return answer.replace('"', "'")
    if kind == 1:
        return answer[:-1] + ",}"
    if kind == 2:
        return answer[:-1]
    return answer[: len(answer) * 2 // 3]

