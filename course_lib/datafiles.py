"""Every data file the course ships, regenerated from code: `python -m course_lib.datafiles [--check]`.

Generation is seeded, so the files come out byte for byte the same; tests/test_datafiles.py regenerates them
into a temporary folder and compares. `--check` does the same from the command line.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import sys
import tempfile
from pathlib import Path

from course_lib.paths import data_path

CURATED_SIZE = 1000  # rows in the curated training set
CURATED_SEED = 7101
CURATED_MAX_CHARS = 1500  # length limit of the shipped curation run (lesson 02 also checks tokens)


def write_jsonl(rows: list, path: Path) -> None:
    """Rows as UTF-8 JSON Lines, one compact object per line (strings are written as they are)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write((row if isinstance(row, str) else json.dumps(row, ensure_ascii=False, separators=(",", ":"))) + "\n")


def curated_training_set(pool: Path, protect: list[Path]) -> list[dict]:
    """The curated ~1,000-row training set: the pool curated for the ticket task, then balanced by category."""
    from course_lib.curation.pipeline import curate, task_rules
    from course_lib.curation.split import stratified_sample

    rules = task_rules("tickets")
    result = curate(pool, rules=rules, max_chars=CURATED_MAX_CHARS, protect=protect)
    chosen = stratified_sample(result.kept, CURATED_SIZE, key=lambda r: json.loads(r.answer)["category"], seed=CURATED_SEED)
    return [r.row for r in chosen]


def write_all(folder: Path) -> list[Path]:
    """Write every shipped file under `folder` (laid out like data/tickets) and return their paths."""
    from course_lib.judgements import build_judgements
    from course_lib.preferences import build_preferences
    from course_lib.rawpool import build_pool
    from course_lib.tickets import build_splits, to_row

    folder.mkdir(parents=True, exist_ok=True)
    splits = build_splits()
    written = []
    for name, tickets in splits.items():
        write_jsonl([to_row(t) for t in tickets], folder / f"{name}.jsonl")
        written.append(folder / f"{name}.jsonl")
    lines, defects = build_pool(splits["gold_test"], splits["dev"])
    write_jsonl(lines, folder / "raw_pool.jsonl")
    write_jsonl(defects, folder / "raw_pool_defects.jsonl")
    avoid = [t.message for t in splits["gold_test"] + splits["dev"]]
    write_jsonl(build_preferences(avoid), folder / "preferences.jsonl")
    write_jsonl(build_judgements(avoid), folder / "judgements.jsonl")
    write_jsonl(curated_training_set(folder / "raw_pool.jsonl", [folder / "gold_test.jsonl", folder / "dev.jsonl"]),
                folder / "train_curated.jsonl")
    written += [folder / n for n in ("raw_pool.jsonl", "raw_pool_defects.jsonl", "preferences.jsonl",
                                      "judgements.jsonl", "train_curated.jsonl")]
    return written


def differences(shipped: Path, fresh: Path) -> list[str]:
    """Names of files in `fresh` that are missing from or differ in `shipped`."""
    return [p.name for p in sorted(fresh.iterdir()) if not (shipped / p.name).exists()
            or not filecmp.cmp(p, shipped / p.name, shallow=False)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.datafiles", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="regenerate into a temporary folder and compare, write nothing")
    args = parser.parse_args(argv)
    shipped = data_path("tickets")
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write_all(Path(tmp))
            changed = differences(shipped, Path(tmp))
        print("all data files match their generators" if not changed else "differ from their generators: " + ", ".join(changed))
        return 1 if changed else 0
    for path in write_all(shipped):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
