"""Instruction-data formats and the converters between them. Introduced in lesson 02.

The course stores conversations in TRL's `messages` format. Public instruction data sets often come in
two others; these functions convert each row to and from `messages`:

    messages : {"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}
    alpaca   : {"instruction": "...", "input": "...", "output": "..."}            (one exchange, optional "system")
    sharegpt : {"conversations": [{"from": "human", "value": "..."}, {"from": "gpt", "value": "..."}]}

Fields other than these (an "id", say) are carried along unchanged.
"""

from __future__ import annotations

FORMATS = ("messages", "alpaca", "sharegpt")
SHAREGPT_ROLES = {"system": "system", "human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant"}
ROLE_TO_SHAREGPT = {"system": "system", "user": "human", "assistant": "gpt"}


class FormatError(ValueError):
    """A row that does not fit the format it is read as; the message names the field and the fix."""


def detect_format(row: object) -> str | None:
    """The format of one row, from the fields it has; None when it looks like none of them."""
    if not isinstance(row, dict):
        return None
    if "messages" in row:
        return "messages"
    if "conversations" in row:
        return "sharegpt"
    if "instruction" in row and "output" in row:
        return "alpaca"
    return None


def alpaca_to_messages(row: dict) -> dict:
    """One Alpaca row as a conversation: the input, if any, follows the instruction after a blank line."""
    for key in ("instruction", "output"):
        if not isinstance(row.get(key), str):
            raise FormatError(f"field {key!r} must be a string in the Alpaca format (instruction, input, output)")
    extra = row.get("input") or ""
    if not isinstance(extra, str):
        raise FormatError("field 'input' must be a string in the Alpaca format")
    user = f"{row['instruction']}\n\n{extra}" if extra else row["instruction"]
    messages = [{"role": "system", "content": row["system"]}] if row.get("system") else []
    messages += [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]
    rest = {k: v for k, v in row.items() if k not in ("instruction", "input", "output", "system")}
    return {**rest, "messages": messages}


def messages_to_alpaca(row: dict) -> dict:
    """A one-exchange conversation (optional system, user, assistant) as an Alpaca row."""
    messages = row.get("messages")
    roles = [m.get("role") for m in messages] if isinstance(messages, list) else None
    if roles not in (["user", "assistant"], ["system", "user", "assistant"]):
        raise FormatError("the Alpaca format holds one exchange (optional system, user, assistant); this row has "
                          f"roles {roles}")
    system = messages[0]["content"] if roles[0] == "system" else None
    rest = {k: v for k, v in row.items() if k != "messages"}
    out = {**rest, "instruction": messages[-2]["content"], "input": "", "output": messages[-1]["content"]}
    if system is not None:
        out["system"] = system
    return out


def sharegpt_to_messages(row: dict) -> dict:
    """One ShareGPT row as a conversation (from/value becomes role/content)."""
    turns = row.get("conversations")
    if not isinstance(turns, list):
        raise FormatError("field 'conversations' must be a list of {'from': ..., 'value': ...} turns")
    messages = []
    for i, turn in enumerate(turns):
        speaker = turn.get("from") if isinstance(turn, dict) else None
        if speaker not in SHAREGPT_ROLES:
            raise FormatError(f"conversations[{i}]: 'from' is {speaker!r}; expected one of {', '.join(SHAREGPT_ROLES)}")
        messages.append({"role": SHAREGPT_ROLES[speaker], "content": turn.get("value")})
    rest = {k: v for k, v in row.items() if k != "conversations"}
    return {**rest, "messages": messages}


def messages_to_sharegpt(row: dict) -> dict:
    """A conversation as a ShareGPT row (role/content becomes from/value)."""
    messages = row.get("messages")
    if not isinstance(messages, list):
        raise FormatError("field 'messages' must be a list of {'role': ..., 'content': ...} turns")
    turns = []
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ROLE_TO_SHAREGPT:
            raise FormatError(f"messages[{i}]: role {role!r} has no ShareGPT equivalent (system, user, assistant)")
        turns.append({"from": ROLE_TO_SHAREGPT[role], "value": message.get("content")})
    rest = {k: v for k, v in row.items() if k != "messages"}
    return {**rest, "conversations": turns}


TO_MESSAGES = {"messages": lambda row: row, "alpaca": alpaca_to_messages, "sharegpt": sharegpt_to_messages}
FROM_MESSAGES = {"messages": lambda row: row, "alpaca": messages_to_alpaca, "sharegpt": messages_to_sharegpt}


def to_messages(row: dict, fmt: str = "auto") -> dict:
    """Convert one row in `fmt` ("auto" to detect it) to the messages format."""
    if fmt == "auto":
        fmt = detect_format(row)
        if fmt is None:
            raise FormatError("the row has none of the fields 'messages', 'conversations' or 'instruction'+'output'")
    if fmt not in TO_MESSAGES:
        raise FormatError(f"unknown format {fmt!r}; use one of: auto, {', '.join(FORMATS)}")
    return TO_MESSAGES[fmt](row)


def from_messages(row: dict, fmt: str) -> dict:
    """Convert one messages-format row to `fmt`."""
    if fmt not in FROM_MESSAGES:
        raise FormatError(f"unknown format {fmt!r}; use one of: {', '.join(FORMATS)}")
    return FROM_MESSAGES[fmt](row)
