"""Personal data: find e-mail addresses, phone numbers, card numbers and street addresses, and redact them.

Each kind is replaced by a typed placeholder (<EMAIL>, <PHONE>, <CARD>, <ADDRESS>) so the text keeps its
shape. Rules like these have known misses, and tests/test_curation_pii.py pins them down:
- addresses without a number or a street word ("the blue house past the church"), and most non-English ones;
- numbers written out ("five five five, one two three four"), or split across lines;
- e-mails written to dodge filters ("maria at example dot com").
Order numbers (ORD-123456) are not personal data and are never touched.

Numbers in maths and code are not personal data either, and the rules are written not to fire on them:
- a number that continues a longer one (450,000-2000, 3.1415926535, #000000, 0x00ff00) is no phone or card;
- a number next to an arithmetic sign or "=" (12 * 34 = 408, x = 0123456789) is a calculation;
- a phone has 8 to 15 digits; a card number is written as one block or in groups of four (4-6-5 for
  American Express), so a row of a multiplication table that happens to pass the Luhn checksum is left alone.
tests/test_curation_pii.py holds these traps, and `traps.pii_traps` a labelled sample to measure precision on.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "CARD": "<CARD>", "ADDRESS": "<ADDRESS>"}

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
NOT_BEFORE = r"(?<![\w.,#$€£/-])"  # a phone or card does not continue a word, a decimal, a hex colour or a price
NOT_AFTER = r"(?![\w-]|[.,/]\d)"
# 13-19 digits in one block or in groups of four (4-6-5 for Amex); confirmed by the Luhn checksum below.
CARD = re.compile(NOT_BEFORE + r"(?:\d{13,19}|\d{4}([ -])\d{4}(?:\1\d{4}){1,2}(?:\1\d{1,4})?|\d{4}([ -])\d{6}\2\d{5})"
                  + NOT_AFTER)
# International (+44 20 7946 0958), North American ((555) 123-4567, 555.123.4567) and long local numbers.
PHONE = re.compile(
    NOT_BEFORE + r"(?:"
    r"(?:\+|00)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 ..., 0049 ...
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567, 555.123.4567
    r"|0\d{2,4}[ /-]?\d{3,4}[ -]?\d{3,4}"  # 030 1234 5678, 020-7946-0958
    r")" + NOT_AFTER
)
PHONE_DIGITS = (8, 15)  # the fewest and most digits of a phone number (E.164 allows at most 15)
ARITHMETIC = re.compile(r"[-+*/×÷=^<>%]")
STREET_WORDS = r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Close)"
ADDRESS = re.compile(rf"\b\d{{1,5}}[A-Za-z]?\s+(?:[A-Z][a-z]+\s+){{1,3}}{STREET_WORDS}\b\.?"
                     r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+){0,2})?(?:,?\s*[A-Z0-9]{2,4}\s?[A-Z0-9]{3})?")
ORDER_ID = re.compile(r"\bORD-\d{6}\b")
PATTERNS = (("EMAIL", EMAIL), ("CARD", CARD), ("ADDRESS", ADDRESS), ("PHONE", PHONE))  # in the order applied


@dataclass(frozen=True)
class PiiHit:
    kind: str  # EMAIL, PHONE, CARD or ADDRESS
    start: int
    end: int
    text: str


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum that every payment card number passes (and most random digit strings fail)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def in_calculation(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] stands next to an arithmetic sign or "=", spaces aside (a calculation,
    not a number to hide)."""
    before, after = text[:start].rstrip()[-1:], text[end:].lstrip()[:1]
    return bool(ARITHMETIC.fullmatch(before) or ARITHMETIC.fullmatch(after))


def find_pii(text: str) -> list[PiiHit]:
    """Every piece of personal data in `text`, left to right, without overlaps."""
    taken = [(m.start(), m.end()) for m in ORDER_ID.finditer(text)]
    hits: list[PiiHit] = []
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            digits = re.sub(r"\D", "", m.group())
            if kind == "CARD" and not luhn_ok(digits):
                continue
            if kind == "PHONE" and not PHONE_DIGITS[0] <= len(digits) <= PHONE_DIGITS[1]:
                continue
            if kind in ("PHONE", "CARD") and in_calculation(text, m.start(), m.end()):
                continue
            hits.append(PiiHit(kind, m.start(), m.end(), m.group()))
            taken.append((m.start(), m.end()))
    return sorted(hits, key=lambda h: h.start)


def redact(text: str) -> tuple[str, dict[str, int]]:
    """`text` with each piece of personal data replaced by its placeholder, and how many of each kind were replaced."""
    cleaned, counts = _redact(text)
    return cleaned, dict(counts)


@lru_cache(maxsize=4096)  # data sets repeat texts (a shared system prompt): scan each once
def _redact(text: str) -> tuple[str, dict[str, int]]:
    counts: dict[str, int] = {}
    out, last = [], 0
    for hit in find_pii(text):
        out += [text[last : hit.start], PLACEHOLDERS[hit.kind]]
        last = hit.end
        counts[hit.kind] = counts.get(hit.kind, 0) + 1
    out.append(text[last:])
    return "".join(out), counts


def redact_messages(messages: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """Redact every turn of a conversation; returns new turns and the total counts per kind."""
    out, changes = redact_with_changes(messages)
    total: dict[str, int] = {}
    for change in changes:
        total[change["kind"]] = total.get(change["kind"], 0) + 1
    return out, total


def redact_with_changes(messages: list[dict]) -> tuple[list[dict], list[dict]]:
    """Redact every turn; returns new turns and one entry per replaced value: field, role, kind and where it was.

    The entries name the place (`messages[1].content`, characters `start` to `end` of the original), not the value,
    so the record of changes holds no personal data itself.
    """
    out, changes = [], []
    for i, message in enumerate(messages):
        hits = _hits(message["content"])
        if not hits:
            out.append(message)
            continue
        out.append({**message, "content": _redact(message["content"])[0]})
        changes += [{"field": f"messages[{i}].content", "role": message.get("role"), "kind": h.kind,
                     "start": h.start, "end": h.end} for h in hits]
    return out, changes


@lru_cache(maxsize=4096)
def _hits(text: str) -> tuple[PiiHit, ...]:
    return tuple(find_pii(text))
