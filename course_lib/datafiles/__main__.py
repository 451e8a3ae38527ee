"""`python -m course_lib.datafiles [--check]`: write every shipped data file, or check them against their generators."""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from course_lib.datafiles.shipped import differences, write_all
from course_lib.paths import data_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.datafiles", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="regenerate into a temporary folder and compare, write nothing")
    args = parser.parse_args(argv)
    shipped = data_path()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write_all(Path(tmp))
            changed = differences(shipped, Path(tmp))
        print("all data files match their generators" if not changed
              else "differ from their generators: " + ", ".join(changed))
        return 1 if changed else 0
    for path in write_all(shipped):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
