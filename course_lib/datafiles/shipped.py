"""Every data file the course ships under data/tickets and data/probe, regenerated from code.

Generation is seeded, so the files come out byte for byte the same; tests/test_datafiles.py regenerates them
into a temporary folder and compares; `python -m course_lib.datafiles --check` does the same from the command line.
"""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

from course_lib.curation.pipeline import CURATED_SEED, CURATED_SIZE, curate, task_rules
from course_lib.curation.split import stratified_sample
from course_lib.datafiles.judgements import build_judgements
from course_lib.datafiles.preferences import build_preferences
from course_lib.datafiles.rawpool import build_pool
from course_lib.datafiles.tickets import build_splits, to_row
from course_lib.jsonl import write_jsonl
from course_lib.tinymodel.corpus import probe_set_rows

CURATED_MAX_CHARS = 1500  # length limit of the shipped curation run (lesson 02 also checks tokens)


def curated_training_set(pool: Path, protect: list[Path]) -> list[dict]:
    """The curated ~1,000-row training set: the pool curated for the ticket task, then balanced by category."""
    rules = task_rules("tickets")
    result = curate(pool, rules=rules, max_chars=CURATED_MAX_CHARS, protect=protect)
    chosen = stratified_sample(result.kept, CURATED_SIZE, key=lambda r: json.loads(r.answer)["category"],
                               seed=CURATED_SEED)
    return [r.row for r in chosen]


def write_all(root: Path) -> list[Path]:
    """Write every shipped file under `root` (laid out like data/: tickets/*, probe/heldout.jsonl);
    return their paths."""
    folder = root / "tickets"
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
    write_jsonl(probe_set_rows(), root / "probe" / "heldout.jsonl")
    return written + [root / "probe" / "heldout.jsonl"]


def differences(shipped: Path, fresh: Path) -> list[str]:
    """Paths (relative to `fresh`) of the files under `fresh` that are missing from or differ in `shipped`."""
    names = sorted(p.relative_to(fresh) for p in fresh.rglob("*") if p.is_file())
    return [str(n) for n in names
            if not (shipped / n).is_file() or not filecmp.cmp(fresh / n, shipped / n, shallow=False)]

