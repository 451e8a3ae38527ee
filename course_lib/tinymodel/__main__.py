"""Build or probe the course's tiny chat model.

Usage:
    python -m course_lib.tinymodel build            # pretrain and write data/models/tiny-chat
    python -m course_lib.tinymodel build --smoke    # the reduced build the tests run, into a temporary folder
    python -m course_lib.tinymodel probe            # held-out scores of data/models/tiny-chat, as JSON
    python -m course_lib.tinymodel probe --model PATH --limit 50
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import fields, replace
from pathlib import Path

from course_lib.paths import data_path
from course_lib.probe import probe
from course_lib.tinymodel.build import SMOKE, BuildConfig, build

DEFAULT_MODEL = ("models", "tiny-chat")  # under data/


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run `build` or `probe`."""
    parser = argparse.ArgumentParser(prog="python -m course_lib.tinymodel", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    b = commands.add_parser("build", help="pretrain the tiny model")
    b.add_argument("--smoke", action="store_true",
                   help="reduced build (tiny corpus, few steps) into a temporary folder")
    b.add_argument("--out", type=Path, default=None, help="output folder (default: data/models/tiny-chat)")
    b.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    for f in fields(BuildConfig):
        kind = int if f.type in ("int", "int | None") else float if f.type == "float" else str
        b.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None, help=f"override {f.name}")
    p = commands.add_parser("probe", help="measure a model's held-out abilities")
    p.add_argument("--model", type=Path, default=None, help="model folder (default: data/models/tiny-chat)")
    p.add_argument("--limit", type=int, default=None, help="items per ability (default: all)")
    p.add_argument("--tickets", type=int, default=100, help="gold-test tickets asked zero-shot")
    args = parser.parse_args(argv)

    if args.command == "build":
        config = SMOKE if args.smoke else BuildConfig()
        overrides = {f.name: getattr(args, f.name) for f in fields(BuildConfig) if getattr(args, f.name) is not None}
        config = replace(config, **overrides)
        out = args.out or (Path(tempfile.mkdtemp(prefix="tiny-chat-smoke-")) if args.smoke
                           else data_path(*DEFAULT_MODEL))
        result = build(config, out, progress=not args.no_progress)
        print(json.dumps({"model": str(out), **result}, indent=2))
        return 0
    scores = probe(args.model or data_path(*DEFAULT_MODEL), limit=args.limit, tickets_limit=args.tickets)
    print(json.dumps(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
