"""Where the test suite spends its time: `python benchmarks/suite_time.py [--workers N] [PYTEST ARGS...]`.

Runs pytest as `make test` does (offline, the same paths and options; extra arguments go to pytest, e.g. test
files or notebooks) and prints one row per notebook and test file:

- wall time (setup, cells or tests, teardown) and CPU time (of the test process and of the kernel it started);
- for its training runs (every `transformers.Trainer.train`, whichever trainer): optimiser steps, seconds spent in
  training steps and in evaluation, training tokens per second (real tokens over the seconds in training steps)
  and the share of the batches' tokens that are padding;
- seconds spent generating, and generated tokens per second;

then the slowest cells and tests. `--workers 2` runs the files on two pytest-xdist workers, as `make test` does;
`--workers 0` runs them one after another in one process. `--json FILE` also writes the rows as JSON.
Timings are figures to read, never a pass/fail condition.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
ITEM_LOG_ENV_VAR = "COURSE_SUITE_ITEMS"


# ---------------------------------------------------------------------------------------------------------
# The pytest plugin (loaded with -p suite_time in the test process and in each xdist worker)


def _cpu_seconds() -> float:
    self, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self.ru_utime + self.ru_stime + children.ru_utime + children.ru_stime


def pytest_configure(config):
    import suite_hooks

    suite_hooks.install_when_imported()


def _relative(path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """Time each item, its setup and teardown included (a notebook starts and stops its kernel there)."""
    import suite_hooks

    os.environ[suite_hooks.FILE_ENV_VAR] = _relative(item.path)  # a kernel started now inherits it
    wall, cpu = time.perf_counter(), _cpu_seconds()
    try:
        return (yield)
    finally:
        _log_item(item, wall, cpu)


def _log_item(item, wall: float, cpu: float) -> None:
    record = {"file": _relative(item.path), "item": item.nodeid, "name": item.name,
              "seconds": time.perf_counter() - wall, "cpu_seconds": _cpu_seconds() - cpu,
              "worker": os.environ.get("PYTEST_XDIST_WORKER", "main"), "start": wall}
    with open(os.environ[ITEM_LOG_ENV_VAR], "a") as log:
        log.write(json.dumps(record) + "\n")


# ---------------------------------------------------------------------------------------------------------
# The report


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def cell_label(item: dict) -> str:
    """'notebooks/03_full_sft.ipynb cell 21' or 'tests/test_x.py::test_y'."""
    if item["file"].endswith(".ipynb"):
        return f"{item['file']} {item['name'].replace('Cell ', 'cell ')}"
    return item["item"]


def summarise(items: list[dict], speed: list[dict]) -> list[dict]:
    """One row per file: wall, CPU, training and generation figures."""
    rows: dict[str, dict] = defaultdict(lambda: defaultdict(float))
    for item in items:
        row = rows[item["file"]]
        row["seconds"] += item["seconds"]
        row["cpu_seconds"] += item["cpu_seconds"]
        row["items"] += 1
    for record in speed:
        row = rows[record["file"]]
        if record["kind"] == "train":
            row["runs"] += 1
            for key in ("steps", "step_seconds", "eval_seconds", "real_tokens", "all_tokens"):
                row[key] += record[key]
        else:
            row["generate_seconds"] += record["seconds"]
            row["new_tokens"] += record["new_tokens"]
    return [{"file": name, **row} for name, row in sorted(rows.items())]


def markdown(rows: list[dict], items: list[dict], wall: float, workers: int, slowest: int) -> str:
    def figure(value, digits=0):
        return f"{value:,.{digits}f}" if value else ""

    lines = ["| file | wall s | CPU s | training runs | steps | in training steps s | in evaluation s | "
             "training tokens/s | padding | generating s | generated tokens/s |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    totals = defaultdict(float)
    for row in rows:
        for key, value in row.items():
            if key != "file":
                totals[key] += value
    for row in [*rows, {"file": "**all**", **totals}]:
        padding = 1 - row.get("real_tokens", 0) / row["all_tokens"] if row.get("all_tokens") else 0
        tokens_per_s = row.get("real_tokens", 0) / row["step_seconds"] if row.get("step_seconds") else 0
        generated_per_s = row.get("new_tokens", 0) / row["generate_seconds"] if row.get("generate_seconds") else 0
        lines.append(
            f"| {row['file']} | {figure(row.get('seconds'))} | {figure(row.get('cpu_seconds'))} | "
            f"{figure(row.get('runs'))} | {figure(row.get('steps'))} | {figure(row.get('step_seconds'))} | "
            f"{figure(row.get('eval_seconds'))} | {figure(tokens_per_s)} | "
            f"{f'{padding:.1%}' if row.get('all_tokens') else ''} | {figure(row.get('generate_seconds'))} | "
            f"{figure(generated_per_s)} |")
    lines += ["", f"Wall time of the whole run: {wall:,.0f} s on {workers or 1} "
              f"{'worker' if workers <= 1 else 'workers'}; CPU seconds include the notebook kernels.", "",
              f"The {slowest} slowest cells and tests:", "", "| cell or test | wall s | CPU s |",
              "| --- | ---: | ---: |"]
    for item in sorted(items, key=lambda i: -i["seconds"])[:slowest]:
        lines.append(f"| {cell_label(item)} | {item['seconds']:,.1f} | {item['cpu_seconds']:,.1f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--workers", type=int, default=None,
                        help="pytest-xdist workers (0: one process, no xdist); default: as make test runs")
    parser.add_argument("--slowest", type=int, default=20, help="how many of the slowest cells and tests to list")
    parser.add_argument("--json", type=Path, help="also write the per-file rows and the items here")
    args, pytest_args = parser.parse_known_args()

    with tempfile.TemporaryDirectory(prefix="suite_time_") as scratch:
        scratch = Path(scratch)
        item_log, speed_log = scratch / "items.jsonl", scratch / "speed.jsonl"
        startup = scratch / "ipython" / "profile_default" / "startup"
        startup.mkdir(parents=True)
        # every notebook kernel installs the same timers when it starts
        (startup / "00-suite-time.py").write_text(
            f"import sys\nsys.path.insert(0, {str(HERE)!r})\nimport suite_hooks\nsuite_hooks.install_when_imported()\n")
        env = dict(os.environ, IPYTHONDIR=str(scratch / "ipython"), COURSE_SUITE_LOG=str(speed_log),
                   **{ITEM_LOG_ENV_VAR: str(item_log)}, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
                   PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")])))
        command = [sys.executable, "-m", "pytest", "-p", "suite_time", *pytest_args]
        if args.workers is not None:
            command += ["-n", str(args.workers)]
        print("running:", " ".join(command), flush=True)
        start = time.perf_counter()
        returncode = subprocess.call(command, cwd=ROOT, env=env)
        wall = time.perf_counter() - start
        items, speed = read_jsonl(item_log), read_jsonl(speed_log)
    workers = len({item["worker"] for item in items if item["worker"] != "main"})
    rows = summarise(items, speed)
    print()
    print(markdown(rows, items, wall, workers, args.slowest))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"wall": wall, "workers": workers, "rows": rows, "items": items,
                                         "speed": speed}, indent=1) + "\n")
    if returncode:
        print(f"\npytest exited with {returncode}: the figures above cover the items that ran.")
    return returncode


if __name__ == "__main__":
    sys.exit(main())
