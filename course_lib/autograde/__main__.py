"""Command line of the autograder (run by `make grade`).

    python -m course_lib.autograde SUBMISSIONS [--out build/grades] [--time-limit 300]

SUBMISSIONS holds one folder per student with that student's exercise notebooks, named as in exercises/.
Writes OUT/scores.csv (one row per student x exercise) and OUT/scores.md, and prints one line per notebook.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from course_lib.autograde.grade import TIME_LIMIT, grade_folder, write_tables
from course_lib.paths import build_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.autograde", description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="folder with one folder of notebooks per student")
    parser.add_argument("--out", type=Path, default=None, help="where to write scores.csv and scores.md "
                                                               "(default: build/grades)")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT,
                        help=f"seconds one notebook may run before it is stopped (default {TIME_LIMIT})")
    args = parser.parse_args(argv)
    if not args.time_limit > 0:
        parser.error(f"--time-limit must be a number of seconds above 0, not {args.time_limit:g}")
    try:
        graded = grade_folder(args.submissions, time_limit=args.time_limit)
    except FileNotFoundError as error:
        print(error, file=sys.stderr)
        return 2
    csv_path, md_path = write_tables(graded, args.out or build_path("grades"))
    print(f"{len(graded)} notebook(s) graded: {csv_path} and {md_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
