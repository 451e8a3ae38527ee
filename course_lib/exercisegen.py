"""Generate `exercises/` from `solutions/` with nbgrader's preprocessors (`make exercises`).

A solution notebook marks each exercise with nbgrader's cell metadata and fences: the code between
`### BEGIN SOLUTION` and `### END SOLUTION` becomes `# YOUR CODE HERE` / `raise NotImplementedError()`
(nbgrader's `ClearSolutions`), and lines between `### BEGIN HIDDEN TESTS` and `### END HIDDEN TESTS` in a check
cell are removed (`ClearHiddenTests`); the autograder puts them back. Each exercise notebook is then stripped and
given its own Colab badge and install cell (`course_lib.nbtools.synced`).

Command line:
    python -m course_lib.exercisegen            # rewrite exercises/ from solutions/
    python -m course_lib.exercisegen --check    # exit 1, naming the files, when exercises/ is out of date
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import nbformat

from course_lib import nbtools
from course_lib.paths import course_root

SOLUTIONS = "solutions"
EXERCISES = "exercises"


class FenceError(ValueError):
    """A solution notebook whose fences or nbgrader metadata are wrong; the message names the file and cell."""


def solution_notebooks(root: Path | None = None) -> list[Path]:
    """Every lesson's solution notebook, in course order."""
    return sorted((root or course_root()).joinpath(SOLUTIONS).glob("[0-9][0-9]*_*.ipynb"))


def exercise_path(solution: Path) -> Path:
    """Where the exercise generated from `solution` lives."""
    return solution.parent.parent / EXERCISES / solution.name


def check_cells_of(nb: dict) -> dict[str, float]:
    """The points of each check (nbgrader grade) cell of `nb`, by grade id, in notebook order."""
    return {c["metadata"]["nbgrader"]["grade_id"]: float(c["metadata"]["nbgrader"].get("points", 0))
            for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def check_fences(nb: dict, name: str) -> None:
    """Each fenced region sits in a cell with nbgrader metadata of the right kind; checks have ids and points."""
    from nbgrader.nbgraderformat import MetadataValidator, ValidationError

    try:
        MetadataValidator().validate_nb(nbformat.from_dict(copy.deepcopy(nb)))
    except ValidationError as error:
        raise FenceError(f"{name}: nbgrader metadata is invalid: {error}") from error
    ids = set()
    for i, cell in enumerate(nb["cells"]):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        text = cell.get("source", "")
        if "### BEGIN SOLUTION" in text and not meta.get("solution"):
            raise FenceError(f"{name}: cell {i} has a solution fence but no nbgrader solution metadata; "
                             'add "nbgrader": {"solution": true, "grade": false, "grade_id": ..., "locked": false}')
        if "### BEGIN HIDDEN TESTS" in text and not meta.get("grade"):
            raise FenceError(f"{name}: cell {i} has hidden tests but is not a grade (check) cell")
        if meta.get("grade_id"):
            if meta["grade_id"] in ids:
                raise FenceError(f"{name}: cell {i} repeats the grade_id {meta['grade_id']!r}; each must be unique")
            ids.add(meta["grade_id"])


def generate(solution: Path) -> str:
    """The text of the exercise notebook generated from `solution`, exactly as it is written to exercises/."""
    from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

    name = nbtools.relative_name(solution)
    nb = nbtools.read(solution)
    check_fences(nb, name)
    try:
        nb, _ = ClearSolutions(enforce_metadata=True).preprocess(nb, {})
        nb, _ = ClearHiddenTests(enforce_metadata=True).preprocess(nb, {})
    except RuntimeError as error:  # nbgrader's message for an unclosed or misplaced fence
        raise FenceError(f"{name}: {error}") from error
    target = nbtools.relative_name(exercise_path(solution))
    return nbformat.writes(nbformat.from_dict(nbtools.synced(nb, target))) + "\n"


def stale(root: Path | None = None) -> list[str]:
    """Exercise notebooks that differ from what their solutions generate, or have no solution, as messages."""
    root = root or course_root()
    found = []
    solutions = solution_notebooks(root)
    for solution in solutions:
        target = exercise_path(solution)
        if not target.exists():
            found.append(f"{EXERCISES}/{target.name}: missing")
        elif target.read_text(encoding="utf-8") != generate(solution):
            found.append(f"{EXERCISES}/{target.name}: differs from what {SOLUTIONS}/{solution.name} generates")
    names = {s.name for s in solutions}
    for extra in sorted(root.joinpath(EXERCISES).glob("*.ipynb")):
        if extra.name not in names:
            found.append(f"{EXERCISES}/{extra.name}: has no {SOLUTIONS}/{extra.name} to be generated from")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.exercisegen", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report exercises that are out of date")
    args = parser.parse_args(argv)
    if args.check:
        found = stale()
        print("\n".join(found) + "\nRun `make exercises` to regenerate them." if found else "exercises/ is up to date")
        return 1 if found else 0
    for solution in solution_notebooks():
        target = exercise_path(solution)
        target.write_text(generate(solution), encoding="utf-8")
        print(f"wrote {EXERCISES}/{target.name} from {SOLUTIONS}/{solution.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
