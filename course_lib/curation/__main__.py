"""Command line: `python -m course_lib.curation report FILE` and `python -m course_lib.curation clean IN OUT`.

Both work on any instruction data set in the messages, Alpaca or ShareGPT format (`--format`, detected by
default). `clean` writes OUT (messages format), OUT's card (`.card.md`) and every removed row with its
reason (`.removed.jsonl`).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from course_lib.curation.card import length_stats
from course_lib.curation.dedup import exact_duplicates, near_duplicate_links
from course_lib.curation.pii import find_pii
from course_lib.curation.pipeline import curate, task_rules, write_curated
from course_lib.curation.records import CurationError
from course_lib.curation.validate import validate_file
from course_lib.formats import FORMATS


def load_tokenizer(path: str | None):
    if not path:
        return None
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(path)


def report(args: argparse.Namespace) -> dict:
    """A JSON-ready summary of one file: rows, invalid lines, duplicates, personal data, lengths."""
    start = time.perf_counter()
    tokenizer = load_tokenizer(args.tokenizer)
    result = validate_file(args.file, fmt=args.format, tokenizer=tokenizer, max_tokens=args.max_tokens, progress=True)
    users = [r.text("user") for r in result.records]
    links = near_duplicate_links(users, threshold=args.near_threshold, progress=True)
    pii: dict[str, int] = {}
    kinds_in: dict[str, list[str]] = {}  # texts repeat (a shared system prompt): scan each once
    for record in result.records:
        for message in record.messages:
            text = message["content"]
            if text not in kinds_in:
                kinds_in[text] = [hit.kind for hit in find_pii(text)]
            for kind in kinds_in[text]:
                pii[kind] = pii.get(kind, 0) + 1
    chars = [len(r.prompt) + len(r.answer) for r in result.records]
    summary = {
        "file": str(args.file), "lines": result.lines, "rows": len(result.records),
        "invalid_lines": len(result.problems), "invalid_by_code": result.summary(),
        "invalid": [{"line": p.line, "code": p.code, "detail": p.detail} for p in result.problems[: args.show]],
        "exact_duplicate_rows": sum(len(g) - 1 for g in exact_duplicates(users)),
        "near_duplicate_rows": len(links),
        "pii_hits": dict(sorted(pii.items())),
        "length_chars": length_stats(chars),
        "seconds": round(time.perf_counter() - start, 1),
    }
    tokens = [r.flags["tokens"] for r in result.records if "tokens" in r.flags]
    if tokens:
        summary["length_tokens"] = length_stats(tokens)
    return summary


def clean(args: argparse.Namespace) -> dict:
    rules = task_rules(args.task)
    tokenizer = load_tokenizer(args.tokenizer)
    result = curate(args.input, fmt=args.format, rules=rules, tokenizer=tokenizer, max_tokens=args.max_tokens,
                    max_chars=args.max_chars, near_threshold=args.near_threshold, protect=args.protect, progress=True)
    paths = write_curated(result, args.output)
    return {"kept": len(result.kept), "removed": result.removed_counts(), "redacted": result.redacted,
            "written": {k: str(v) for k, v in paths.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.curation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("report", "clean"):
        p = sub.add_parser(name)
        if name == "report":
            p.add_argument("file")
            p.add_argument("--show", type=int, default=20, help="invalid lines to list (all are counted)")
        else:
            p.add_argument("input")
            p.add_argument("output")
            p.add_argument("--task", choices=["generic", "tickets"], default="generic",
                           help="tickets adds the course task's checks: off-task rows, invalid answers, languages, label conflicts")
            p.add_argument("--max-chars", type=int, default=None, help="drop rows whose prompt is longer")
            p.add_argument("--protect", nargs="*", default=[], help="test files no kept row may near-duplicate")
        p.add_argument("--format", choices=["auto", *FORMATS], default="auto")
        p.add_argument("--tokenizer", default=None, help="tokenizer folder or Hub id, to count tokens with its chat template")
        p.add_argument("--max-tokens", type=int, default=None, help="with --tokenizer: rows over this are reported as too_long")
        p.add_argument("--near-threshold", type=float, default=0.7, help="Jaccard similarity from which rows are near duplicates")
    args = parser.parse_args(argv)
    try:
        out = report(args) if args.command == "report" else clean(args)
    except CurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
