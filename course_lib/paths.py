"""Where the course's files are, found the same way from any folder.

Introduced in lesson 00. A notebook may run from `notebooks/`, `exercises/`, `solutions/` or a Colab
clone; each finds the course root (the folder holding `course_lib/` and `data/`) and reads data from
there, never through a path relative to the current folder.
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT_ENV_VAR = "COURSE_ROOT"  # set it to point at a checkout explicitly
BUILD_ENV_VAR = "COURSE_BUILD"  # another folder for runs and saved models instead of build/ (`make perturb` sets it)


def _is_course_root(folder: Path) -> bool:
    return (folder / "course_lib").is_dir() and (folder / "data").is_dir()


def course_root() -> Path:
    """The course's top folder: `$COURSE_ROOT`, else the checkout this package lives in,
    else a parent of the current folder."""
    override = os.environ.get(ROOT_ENV_VAR)
    if override:
        root = Path(override).expanduser().resolve()
        if not _is_course_root(root):
            raise FileNotFoundError(
                f"{ROOT_ENV_VAR}={override!r} is not the course's folder: it needs both course_lib/ and data/. "
                f"Point {ROOT_ENV_VAR} at your checkout, or unset it."
            )
        return root
    here = Path(__file__).resolve().parent.parent
    cwd = Path.cwd().resolve()
    candidates = [here, cwd, *cwd.parents]
    for folder in candidates:
        if _is_course_root(folder):
            return folder
    raise FileNotFoundError(
        "Could not find the course's folder (one with course_lib/ and data/) next to the installed "
        f"course_lib ({here}) or above the current folder ({cwd}). Run the notebook from inside a "
        f"checkout of the course, install it with `pip install -e .` from that checkout, or set {ROOT_ENV_VAR}."
    )


def data_dir() -> Path:
    """The course's `data/` folder."""
    return course_root() / "data"


def data_path(*parts: str) -> Path:
    """A path inside `data/`, e.g. `data_path("tickets", "gold_test.jsonl")`."""
    return data_dir().joinpath(*parts)


def build_path(*parts: str) -> Path:
    """A path inside the course's `build/` folder (ignored by git), where runs write checkpoints and outputs.

    Absolute, so a notebook writes to the same place whatever folder its kernel starts in. `$COURSE_BUILD`, when
    set, names another folder to use instead (runs under other settings then keep their saved models apart).
    """
    override = os.environ.get(BUILD_ENV_VAR)
    folder = Path(override).expanduser().resolve() if override else course_root() / "build"
    return folder.joinpath(*parts)
