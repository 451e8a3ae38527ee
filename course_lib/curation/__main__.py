"""Command line: `python -m course_lib.curation report FILE` and `python -m course_lib.curation clean IN OUT`.

Both read JSON Lines or a JSON array, in the messages, Alpaca or ShareGPT format (`--format`; by default each
row's format is detected on its own), with fields renamed by `--map OLD=NEW`. `clean` writes OUT (messages
format), every removed row with its reason (`OUT.removed.jsonl`), every value redaction replaced
(`OUT.changes.jsonl`: line, field, kind) and the card (`OUT.card.md`). Of each duplicate cluster the earliest
row is kept. Every option is checked, and every output path, before any work; a run that keeps no row exits
with status 1 unless `--allow-empty` is given. Errors exit with status 2 (3 for a failure no check foresaw) and
a message, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from course_lib.curation.card import length_stats
from course_lib.curation.dedup import KEEP_RULE, exact_duplicates, near_duplicate_links
from course_lib.curation.output import check_outputs
from course_lib.curation.pii import find_pii
from course_lib.curation.pipeline import check_settings, curate, task_rules, write_curated
from course_lib.curation.reading import MAX_ROW_BYTES
from course_lib.curation.records import CurationError
from course_lib.curation.validate import validate_file
from course_lib.formats import FORMATS


def load_tokenizer(path: str | None):
    """The tokenizer from a local folder or a Hub id, or a CurationError that says why it cannot be loaded."""
    if not path:
        return None
    local = Path(path)
    if (path.startswith((".", "/", "~")) or local.exists() or path.count("/") > 1) and not local.expanduser().is_dir():
        raise CurationError(f"--tokenizer {path}: no such folder. Give a folder with tokenizer files, or a Hub id such "
                            "as HuggingFaceTB/SmolLM2-360M-Instruct.")
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(str(local.expanduser()) if local.expanduser().is_dir() else path)
    except (OSError, ValueError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CurationError(f"--tokenizer {path}: cannot load a tokenizer ({first}). "
                            "Offline, give a local folder.") from None


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """`["response=output"]` as {"response": "output"}; a CurationError for anything else."""
    mapping: dict[str, str] = {}
    for pair in pairs:
        old, sep, new = pair.partition("=")
        if not sep or not old or not new or old == new:
            raise CurationError(f"--map {pair!r}: write OLD=NEW, e.g. --map response=output")
        if old in mapping:
            raise CurationError(f"--map names {old!r} twice")
        mapping[old] = new
    return mapping


def report(args: argparse.Namespace) -> dict:
    """A JSON-ready summary of one file: rows, invalid lines, duplicates, personal data, lengths."""
    start = time.perf_counter()
    mapping = parse_mapping(args.map)
    tokenizer = load_tokenizer(args.tokenizer)
    check_settings(max_chars=None, near_threshold=args.near_threshold, max_tokens=args.max_tokens, tokenizer=tokenizer,
                   max_row_bytes=args.max_row_bytes)
    result = validate_file(args.file, fmt=args.format, tokenizer=tokenizer, max_tokens=args.max_tokens, mapping=mapping,
                           max_row_bytes=args.max_row_bytes, progress=True)
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
    mapping = parse_mapping(args.map)
    check_outputs(args.output, [args.input, *args.protect])
    for path in [args.input, *args.protect]:
        if not Path(path).is_file():
            raise CurationError(f"{path} does not exist or is not a file. Check the path.")
    check_settings(max_chars=args.max_chars, near_threshold=args.near_threshold, max_tokens=args.max_tokens,
                   tokenizer=args.tokenizer, max_row_bytes=args.max_row_bytes)
    tokenizer = load_tokenizer(args.tokenizer)
    result = curate(args.input, fmt=args.format, rules=rules, tokenizer=tokenizer, max_tokens=args.max_tokens,
                    max_chars=args.max_chars, near_threshold=args.near_threshold, protect=args.protect,
                    redact=args.redact, drop_conflicts=args.drop_conflicts, mapping=mapping,
                    max_row_bytes=args.max_row_bytes, progress=True)
    if not result.kept and not args.allow_empty:
        counts = {k: v for k, v in result.removed_counts().items() if v}
        raise EmptyResult(f"no row of {args.input} was kept (removed: {counts}); nothing was written. Check --format, "
                          "--map, --task and the thresholds against the first lines of the file, or pass "
                          "--allow-empty.")
    paths = write_curated(result, args.output)
    return {"kept": len(result.kept), "removed": result.removed_counts(), "redacted": result.redacted,
            "changed_rows": len({c["line"] for c in result.changes()}),
            "written": {k: str(v) for k, v in paths.items()}}


class EmptyResult(CurationError):
    """A clean run that kept no row (exit status 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.curation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("report", "clean"):
        p = sub.add_parser(name)
        if name == "report":
            p.add_argument("file", help="JSON Lines or JSON array file")
            p.add_argument("--show", type=int, default=20, help="invalid lines to list (all are counted)")
        else:
            p.add_argument("input", help="JSON Lines or JSON array file")
            p.add_argument("output", help="the kept rows (JSON Lines, messages format); must not be the input")
            p.add_argument("--task", choices=["generic", "tickets"], default="generic",
                           help="tickets adds the course task's checks: off-task rows, invalid answers, languages, and "
                                "label conflicts (near-identical prompts with different labels drop their whole "
                                f"cluster); in every task {KEEP_RULE}")
            p.add_argument("--drop-conflicts", action="store_true",
                           help="with --task generic: treat the answer as the label and drop clusters of "
                                "near-identical prompts whose answers differ (off by default: similar prompts may have "
                                "different good answers)")
            p.add_argument("--max-chars", type=int, default=None, help="drop rows whose prompt is longer (1 or more)")
            p.add_argument("--protect", nargs="*", default=[], help="test files no kept row may near-duplicate")
            p.add_argument("--redact", action=argparse.BooleanOptionalAction, default=True,
                           help="replace e-mails, phones, card numbers and street addresses by placeholders, each "
                                "change recorded in OUT.changes.jsonl (default: on)")
            p.add_argument("--allow-empty", action="store_true",
                           help="exit 0 and write the files even when no row is kept")
        p.add_argument("--format", choices=["auto", *FORMATS], default="auto",
                       help="the rows' format; auto detects it row by row")
        p.add_argument("--map", action="append", default=[], metavar="OLD=NEW",
                       help="rename a field before reading, e.g. --map response=output (repeatable)")
        p.add_argument("--tokenizer", default=None,
                       help="tokenizer folder or Hub id, to count tokens with its chat template")
        p.add_argument("--max-tokens", type=int, default=None,
                       help="with --tokenizer: rows over this are reported as too_long")
        p.add_argument("--near-threshold", type=float, default=0.7,
                       help="Jaccard similarity (above 0, at most 1) from which rows are near duplicates; passages "
                            "shared by many rows are left out and rows whose numbers differ never match")
        p.add_argument("--max-row-bytes", type=int, default=MAX_ROW_BYTES,
                       help="rows longer than this are reported as row_too_large without being read (default "
                            f"{MAX_ROW_BYTES:,})")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        out = report(args) if args.command == "report" else clean(args)
    except EmptyResult as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except CurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: {error.filename or ''}: {error.strerror or error}. Check the path and its permissions.",
              file=sys.stderr)
        return 2
    # a row no check foresaw: say so plainly; outputs are written atomically, so none is half-written
    except Exception as error:
        print(f"error: curation stopped on an input it does not handle ({type(error).__name__}: {error}). No output "
              "was changed. Please report it with the first lines of the file.", file=sys.stderr)
        return 3
    print(json.dumps(out, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
