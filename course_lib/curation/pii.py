"""Personal data: find e-mail addresses, phone numbers, card numbers and street addresses, and redact them.

Each kind is replaced by a typed placeholder (<EMAIL>, <PHONE>, <CARD>, <ADDRESS>) so the text keeps its
shape. Rules like these have known misses, and tests/test_curation_pii.py pins them down:
- addresses without a number or a street word ("the blue house past the church"), and most non-English ones;
- numbers written out ("five five five, one two three four"), or split across lines;
- e-mails written to dodge filters ("maria at example dot com").
Order numbers (ORD-123456) are not personal data and are never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

PLACEHOLDERS = {"EMAIL": "<EMAIL>", "PHONE": "<PHONE>", "CARD": "<CARD>", "ADDRESS": "<ADDRESS>"}

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits in groups separated by single spaces or dashes; confirmed by the Luhn checksum below.
CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
# International (+44 20 7946 0958), North American ((555) 123-4567, 555.123.4567) and long local numbers.
PHONE = re.compile(
    r"(?<![\w-])(?:"
    r"(?:\+|00)\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,4}){1,4}"  # +44 ..., 0049 ...
    r"|\(\d{3}\)[ .-]?\d{3}[ .-]?\d{4}"  # (555) 123-4567
    r"|\d{3}[.-]\d{3}[.-]\d{4}"  # 555-123-4567, 555.123.4567
    r"|0\d{2,4}[ /-]?\d{3,4}[ -]?\d{3,4}"  # 030 1234 5678, 020-7946-0958
    r")(?![\w-])"
)
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


def find_pii(text: str) -> list[PiiHit]:
    """Every piece of personal data in `text`, left to right, without overlaps."""
    taken = [(m.start(), m.end()) for m in ORDER_ID.finditer(text)]
    hits: list[PiiHit] = []
    for kind, pattern in PATTERNS:
        for m in pattern.finditer(text):
            if any(m.start() < end and start < m.end() for start, end in taken):
                continue
            if kind == "CARD" and not luhn_ok(re.sub(r"\D", "", m.group())):
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
    total: dict[str, int] = {}
    out = []
    for message in messages:
        content, counts = redact(message["content"])
        out.append({**message, "content": content})
        for kind, n in counts.items():
            total[kind] = total.get(kind, 0) + n
    return out, total
