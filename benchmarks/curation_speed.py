"""How fast curation runs on a large file, and its peak memory:
`python benchmarks/curation_speed.py [--rows 100000 300000]`.

Writes a synthetic data set of distinct ticket rows (a share of them duplicated, a few lines broken) to a
temporary folder, in each format asked for (messages by default; `--formats messages alpaca sharegpt`), then
runs `report` and `clean` on it, each in its own process, and prints the wall and CPU seconds, rows per
second and the process's peak resident memory. Targets: 100,000 rows in under a minute per command,
300,000 rows in under 5 minutes and 4 GB, on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib.datafiles.tickets import make_ticket
from course_lib.formats import from_messages
from course_lib.tickets import format_answer, to_messages


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


def timed(command: list[str]) -> tuple[float, float, float, int]:
    """(wall seconds, CPU seconds, peak resident memory in GB, exit status) of one curation command in a fresh process.

    The CPU seconds (user + system) are what the command cost; on a machine busy with other work the wall time is
    longer.
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "course_lib.curation", *command],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return time.perf_counter() - start, cpu, usage.ru_maxrss / 1024**2, proc.returncode  # ru_maxrss is in KB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000])
    parser.add_argument("--formats", nargs="+", default=["messages"], choices=["messages", "alpaca", "sharegpt"])
    args = parser.parse_args()
    for n in args.rows:
        lines = synthetic_rows(n)
        with tempfile.TemporaryDirectory() as tmp:
            for fmt in args.formats:
                path = Path(tmp) / f"{fmt}.jsonl"
                with open(path, "w", encoding="utf-8") as f:
                    for line in lines:
                        try:
                            f.write(json.dumps(from_messages(json.loads(line), fmt), ensure_ascii=False) + "\n")
                        except json.JSONDecodeError:
                            f.write(line + "\n")
                for command in (["report", str(path), "--show", "0"],
                                ["clean", str(path), str(Path(tmp) / f"{fmt}.clean.jsonl")]):
                    seconds, cpu, peak_gb, status = timed(command)
                    print(f"BENCH {command[0]:<6} {fmt:<8} {n:>7} rows: {seconds:6.1f} s wall, {cpu:6.1f} s CPU "
                          f"({n / seconds:,.0f} rows/s), peak memory {peak_gb:.2f} GB, exit {status}", flush=True)


if __name__ == "__main__":
    main()
