"""How fast curation runs on a large file: `python benchmarks/curation_speed.py [--rows 100000]`.

Writes a synthetic data set of distinct ticket rows (a share of them duplicated, a few lines broken) to a
temporary folder, in the messages, Alpaca and ShareGPT formats, then times `report` and `clean` on each and
prints rows per second. The target is 100,000 rows in under a minute on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from course_lib.curation.__main__ import main as curation_cli
from course_lib.formats import from_messages
from course_lib.tickets import format_answer, make_ticket, to_messages


def synthetic_rows(n: int, seed: int = 0) -> list[str]:
    """`n` JSONL lines: tickets, 5% exact copies of earlier rows, one broken line per 10,000."""
    rng = random.Random(seed)
    rows: list[str] = []
    while len(rows) < n:
        if rows and rng.random() < 0.05:
            rows.append(rng.choice(rows))
        elif len(rows) % 10_000 == 9_999:
            rows.append('{"messages": [')
        else:
            t = make_ticket(rng, f"bench-{len(rows)}")
            rows.append(json.dumps({"messages": to_messages(t.message, format_answer(t.label))}, ensure_ascii=False))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    lines = synthetic_rows(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in ("messages", "alpaca", "sharegpt"):
            path = Path(tmp) / f"{fmt}.jsonl"
            with open(path, "w", encoding="utf-8") as f:
                for line in lines:
                    try:
                        f.write(json.dumps(from_messages(json.loads(line), fmt), ensure_ascii=False) + "\n")
                    except json.JSONDecodeError:
                        f.write(line + "\n")
            for command in (["report", str(path), "--show", "0"], ["clean", str(path), str(Path(tmp) / f"{fmt}.clean.jsonl")]):
                start = time.perf_counter()
                curation_cli(command)
                seconds = time.perf_counter() - start
                print(f"BENCH {command[0]:<6} {fmt:<8} {args.rows} rows: {seconds:5.1f} s ({args.rows / seconds:,.0f} rows/s)", flush=True)


if __name__ == "__main__":
    main()
