"""The shipped preference pairs: for each ticket, the right answer (chosen) and one with a realistic fault.

What a usable row is, the rule that names an answer's faults and the rows with bad habits are
`course_lib.preferences`, which lessons 02 and 06 use.
"""

from __future__ import annotations

import random

from course_lib.datafiles.rawpool import clean_tickets
from course_lib.datafiles.tickets import Ticket
from course_lib.preferences import FAULTS, faulty_answer
from course_lib.tickets import format_answer, to_messages

SEED = 5101
SIZE = 800


def faulty_pair(ticket: Ticket, fault: str, rng: random.Random) -> tuple[str, str, str]:
    """(message, chosen answer, rejected answer) for one ticket and one fault."""
    message, rejected = faulty_answer(ticket.message, ticket.label, fault, rng)
    return message, format_answer(ticket.label), rejected


def build_preferences(avoid: list[str], seed: int = SEED, size: int = SIZE) -> list[dict]:
    """`size` preference rows; prompts are dissimilar to every text in `avoid` (the gold and dev messages)."""
    rng = random.Random(seed)
    rows = []
    for i, ticket in enumerate(clean_tickets(rng, size, avoid=avoid)):
        fault = FAULTS[i % len(FAULTS)]
        message, chosen, rejected = faulty_pair(ticket, fault, rng)
        rows.append({"id": f"pref-{i:04d}", "prompt": to_messages(message),
                     "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}], "fault": fault})
    return rows

