"""The row type every curation step passes along, and the error for unusable input."""

from __future__ import annotations

from dataclasses import dataclass, field


class CurationError(ValueError):
    """A file that cannot be curated at all (missing, empty, unreadable); the message names it and the fix."""


@dataclass
class Record:
    """One usable row of a data set, in the messages format, with the line it came from."""

    line: int  # 1-based line number in the source file
    row: dict  # the row, converted to the messages format
    flags: dict = field(default_factory=dict)  # what curation found, e.g. {"pii": {"EMAIL": 1}}

    @property
    def messages(self) -> list[dict]:
        return self.row["messages"]

    def text(self, role: str) -> str:
        """All turns of `role` joined by blank lines, e.g. the customer's message for role "user"."""
        return "\n\n".join(m["content"] for m in self.messages if m["role"] == role)

    @property
    def prompt(self) -> str:
        """The input side of the conversation: system and user turns."""
        return "\n\n".join(m["content"] for m in self.messages if m["role"] != "assistant")

    @property
    def answer(self) -> str:
        """The last assistant turn."""
        return self.messages[-1]["content"]


@dataclass(frozen=True)
class Problem:
    """A line that could not be used, with a code from validate.CODES."""

    line: int
    code: str
    detail: str
    text: str = ""  # the line as it was read, so that nothing is lost

    def __str__(self) -> str:
        return f"line {self.line}: {self.code}: {self.detail}"
