"""The course's running task: support-ticket triage to strict JSON.

Introduced in lesson 00. A customer writes a support message; the model answers with exactly one JSON
object that follows `TICKET_SCHEMA`:

    {"category":"shipping/damaged_item","priority":"high","product":"Nimbus Earbuds",
     "sentiment":"negative","order_id":"ORD-482913","summary":"Nimbus Earbuds arrived damaged."}

This module holds the task's contract: the taxonomy, the priority rules, the schema and its validator, the
prompt that frames the task, the conversation format and the reader of `data/tickets/*.jsonl`. The seeded
generator of labelled messages that wrote those files is `course_lib.datafiles.tickets`; regenerate them with
`python -m course_lib.datafiles`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from course_lib.jsonl import read_jsonl

# 1) The taxonomy: group -> leaf categories. A label is written "group/leaf", e.g. "billing/refund_request".
TAXONOMY: dict[str, tuple[str, ...]] = {
    "billing": ("refund_request", "double_charge", "invoice_request", "cancel_subscription"),
    "shipping": ("late_delivery", "damaged_item", "wrong_item", "change_address"),
    "technical": ("app_crash", "login_problem", "slow_performance", "connectivity"),
    "account": ("update_details", "delete_account", "security_concern"),
}
CATEGORIES: tuple[str, ...] = tuple(f"{group}/{leaf}" for group, leaves in TAXONOMY.items() for leaf in leaves)

PRIORITIES: tuple[str, ...] = ("low", "medium", "high", "urgent")  # in increasing order
SENTIMENTS: tuple[str, ...] = ("negative", "neutral", "positive")

# 2) Products: canonical name -> names customers use for it. Hardware can be shipped, damaged or overheat.
PRODUCTS: dict[str, tuple[str, ...]] = {
    "Aurora Phone": ("Aurora Phone", "Aurora phone", "Aurora"),
    "Nimbus Earbuds": ("Nimbus Earbuds", "Nimbus earbuds", "Nimbus buds"),
    "Pulse Watch": ("Pulse Watch", "Pulse smartwatch", "Pulse watch"),
    "Orbit Laptop": ("Orbit Laptop", "Orbit laptop", "Orbit"),
    "Streamline App": ("Streamline App", "Streamline app", "Streamline"),
    "Cloud Storage Plan": ("Cloud Storage Plan", "cloud storage plan", "Cloud Storage subscription"),
}
HARDWARE = ("Aurora Phone", "Nimbus Earbuds", "Pulse Watch", "Orbit Laptop")
SERVICES = ("Streamline App", "Cloud Storage Plan")

# Which products a category can be about (you cannot ship a subscription or cancel earbuds).
CATEGORY_PRODUCTS: dict[str, tuple[str, ...]] = {
    "billing/refund_request": HARDWARE + SERVICES,
    "billing/double_charge": HARDWARE + SERVICES,
    "billing/invoice_request": HARDWARE + SERVICES,
    "billing/cancel_subscription": SERVICES,
    "shipping/late_delivery": HARDWARE,
    "shipping/damaged_item": HARDWARE,
    "shipping/wrong_item": HARDWARE,
    "shipping/change_address": HARDWARE,
    "technical/app_crash": ("Aurora Phone", "Pulse Watch", "Orbit Laptop", "Streamline App"),
    "technical/login_problem": SERVICES,
    "technical/slow_performance": ("Aurora Phone", "Orbit Laptop", "Pulse Watch", "Streamline App"),
    "technical/connectivity": HARDWARE,
    "account/update_details": HARDWARE + SERVICES,
    "account/delete_account": SERVICES,
    "account/security_concern": SERVICES,
}

# 3) Priority rules, applied in this order (a reader can learn them from the messages):
#    a) a safety hazard (overheating, smoke, swelling battery, burning smell) makes any ticket urgent;
#    b) otherwise start from the category's base priority below;
#    c) a stated deadline ("I need it by tomorrow") raises it one level, up to urgent;
#    d) "no rush" lowers it one level, down to low (customers never say it about a hacked account).
BASE_PRIORITY: dict[str, str] = {
    "billing/refund_request": "medium",
    "billing/double_charge": "high",
    "billing/invoice_request": "low",
    "billing/cancel_subscription": "low",
    "shipping/late_delivery": "medium",
    "shipping/damaged_item": "high",
    "shipping/wrong_item": "high",
    "shipping/change_address": "medium",
    "technical/app_crash": "high",
    "technical/login_problem": "high",
    "technical/slow_performance": "medium",
    "technical/connectivity": "medium",
    "account/update_details": "low",
    "account/delete_account": "medium",
    "account/security_concern": "urgent",
}
# categories where a hardware product can show a safety hazard
SAFETY_CATEGORIES = ("shipping/damaged_item", "technical/app_crash", "technical/slow_performance",
                     "technical/connectivity")

ORDER_ID_PATTERN = r"^ORD-[0-9]{6}$"
SUMMARY_MAX_CHARS = 120
KEY_ORDER: tuple[str, ...] = ("category", "priority", "product", "sentiment", "order_id", "summary")

# 4) The JSON Schema of one answer (draft 2020-12). `validate_ticket` checks the same rules by hand.
TICKET_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Support ticket triage",
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": list(CATEGORIES)},
        "priority": {"type": "string", "enum": list(PRIORITIES)},
        "product": {"type": "string", "enum": list(PRODUCTS)},
        "sentiment": {"type": "string", "enum": list(SENTIMENTS)},
        "order_id": {"type": ["string", "null"], "pattern": ORDER_ID_PATTERN},
        "summary": {"type": "string", "minLength": 1, "maxLength": SUMMARY_MAX_CHARS},
    },
    "required": list(KEY_ORDER),
    "additionalProperties": False,
}

SYSTEM_PROMPT = (
    "You triage customer support tickets. Reply with exactly one JSON object and nothing else, with the keys "
    "category, priority, product, sentiment, order_id and summary."
)


def task_instructions() -> str:
    """The full task description (allowed values and priority rules), for prompting a model without fine-tuning."""
    rules = (
        "Priority: a safety hazard (overheating, smoke, swelling battery, burning smell) is urgent; otherwise use "
        "the category's base priority (" + ", ".join(f"{c}={p}" for c, p in BASE_PRIORITY.items()) + "); "
        "a stated deadline raises it one level and 'no rush' lowers it one level."
    )
    return "\n".join(
        [
            SYSTEM_PROMPT,
            "category: one of " + ", ".join(CATEGORIES) + ".",
            rules,
            "product: one of " + ", ".join(PRODUCTS) + ".",
            "sentiment: one of " + ", ".join(SENTIMENTS) + ".",
            'order_id: the order number as written, e.g. "ORD-123456", or null when the message has none.',
            f"summary: one short English sentence (at most {SUMMARY_MAX_CHARS} characters).",
        ]
    )


# A support agent's typical plain-language reply per category. The tiny model read them in pretraining
# (`course_lib.tinymodel.corpus`); lesson 01 reads which one a prompted answer echoes.
AGENT_REPLIES: dict[str, str] = {
    "billing/refund_request": "I have started the refund for your {p}. The money will be back on your card within five "
                              "working days.",
    "billing/double_charge": "I can see the second payment for your {p}. I have cancelled it, and it will disappear "
                             "from your statement in a few days.",
    "billing/invoice_request": "I have emailed you the invoice for your {p}. You can also download it from your orders "
                               "page.",
    "billing/cancel_subscription": "I have cancelled your {p}. It stays active until the end of the current billing "
                                   "period.",
    "shipping/late_delivery": "I am sorry your {p} is late. I have asked the courier to look into it and will update "
                              "you tomorrow.",
    "shipping/damaged_item": "I am sorry your {p} arrived damaged. A replacement is on its way, and a free return "
                             "label is in your inbox.",
    "shipping/wrong_item": "I am sorry we sent the wrong item. The correct {p} ships today, and you can keep the other "
                           "one until the courier picks it up.",
    "shipping/change_address": "I have updated the delivery address for your {p}. You will get a new tracking email "
                               "shortly.",
    "technical/app_crash": "I am sorry the {p} keeps crashing. Please install the latest update; if it still crashes, "
                           "send us a screenshot.",
    "technical/login_problem": "I have reset the sign-in for your {p} account. Please use the link in the email we "
                               "just sent you.",
    "technical/slow_performance": "Please restart your {p} and close apps you are not using. If it is still slow, we "
                                  "can run a check together.",
    "technical/connectivity": "Please turn Bluetooth and Wi-Fi off and on again, then forget and re-pair the {p}. That "
                              "fixes most connection problems.",
    "account/update_details": "I have updated the details on your {p} account. You will get a confirmation email in a "
                              "minute.",
    "account/delete_account": "I have started the deletion of your {p} account. All your data will be removed within "
                              "30 days.",
    "account/security_concern": "I have locked your {p} account and signed out every device. Please set a new password "
                                "with the link we sent you.",
}


# ---------------------------------------------------------------------------------------------------------
# Validation


class TicketError(ValueError):
    """A ticket answer or a ticket file that breaks the schema; the message names the field and the fix."""


def validate_ticket(data: object) -> list[str]:
    """Every way `data` breaks `TICKET_SCHEMA`, one message per problem naming the field; empty when valid."""
    if not isinstance(data, dict):
        return [f"the answer must be a JSON object, got {type(data).__name__}"]
    problems = []
    for key in KEY_ORDER:
        if key not in data:
            problems.append(f"field {key!r} is missing")
    for key in data:
        if key not in KEY_ORDER:
            problems.append(f"field {key!r} is not allowed (allowed: {', '.join(KEY_ORDER)})")
    enums = {"category": CATEGORIES, "priority": PRIORITIES, "product": tuple(PRODUCTS), "sentiment": SENTIMENTS}
    for key, allowed in enums.items():
        if key in data and data[key] not in allowed:
            problems.append(f"field {key!r} is {data[key]!r}, which is not one of: {', '.join(allowed)}")
    if "order_id" in data:
        value = data["order_id"]
        if value is not None and not (isinstance(value, str) and _is_order_id(value)):
            problems.append(f"field 'order_id' is {value!r}; it must be null or like 'ORD-123456' (ORD- and 6 digits)")
    if "summary" in data:
        value = data["summary"]
        if not isinstance(value, str) or not value.strip():
            problems.append(f"field 'summary' is {value!r}; it must be a non-empty string")
        elif len(value) > SUMMARY_MAX_CHARS:
            problems.append(f"field 'summary' has {len(value)} characters; at most {SUMMARY_MAX_CHARS} are allowed")
    return problems


def _is_order_id(value: str) -> bool:
    return len(value) == 10 and value.startswith("ORD-") and value[4:].isascii() and value[4:].isdigit()


def parse_answer(text: str) -> tuple[dict | None, list[str]]:
    """Parse a model's answer: the JSON object and its problems, or None and why it is not JSON."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        return None, [f"not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}"]
    problems = validate_ticket(data)
    return (data if isinstance(data, dict) else None), problems


def is_valid_answer(text: str) -> bool:
    """True when `text` is exactly one JSON object that follows the schema."""
    return not parse_answer(text)[1]


def format_answer(label: dict) -> str:
    """Serialise a label the one way the course uses: keys in `KEY_ORDER`, compact, UTF-8 kept."""
    problems = validate_ticket(label)
    if problems:
        raise TicketError("cannot format an invalid label: " + "; ".join(problems))
    return json.dumps({key: label[key] for key in KEY_ORDER}, ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------------------------------------------------
# Languages, priorities and conversations

LANGUAGES = ("en", "es", "fr", "de")  # the languages customers write in


def decide_priority(category: str, *, hazard: bool, deadline: bool, no_rush: bool) -> str:
    """Apply the priority rules (see the comment above BASE_PRIORITY) to one ticket."""
    if hazard:
        return "urgent"
    level = PRIORITIES.index(BASE_PRIORITY[category])
    if deadline:
        level = min(level + 1, len(PRIORITIES) - 1)
    if no_rush:
        level = max(level - 1, 0)
    return PRIORITIES[level]


def to_messages(message: str, answer: str | None = None, *, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    """The conversation for one ticket: system (optional), user, and the assistant's answer when given."""
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": message})
    if answer is not None:
        messages.append({"role": "assistant", "content": answer})
    return messages


def without_system_prompt(rows: Sequence[dict]) -> list[dict]:
    """The rows with their system messages removed: the prompt format of a fine-tuned model. Lesson 03.

    A fine-tuned model learns the instruction from its examples, so it needs no system prompt: training and
    asking it without one saves the prompt's tokens on every example and every request. Other fields are kept.
    """
    return [{**row, "messages": [m for m in row["messages"] if m["role"] != "system"]} for row in rows]


# ---------------------------------------------------------------------------------------------------------
# Reading the shipped files


def load_tickets(path: Path | str) -> list[dict]:
    """Read a ticket JSONL file, checking every row; a bad row raises TicketError naming file, line and field."""
    rows = []
    for where, row in read_jsonl(path, TicketError):
        messages = row.get("messages") if isinstance(row, dict) else None
        if not isinstance(messages, list) or not messages or messages[-1].get("role") != "assistant":
            raise TicketError(f"{where}: field 'messages' must be a list of chat turns ending with the assistant's "
                              "answer.")
        data, problems = parse_answer(messages[-1].get("content", ""))
        if problems:
            raise TicketError(f"{where}: the assistant's answer is invalid: {'; '.join(problems)}.")
        rows.append(row)
    return rows

