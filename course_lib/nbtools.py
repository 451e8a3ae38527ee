"""Notebook housekeeping: strip outputs, write the Colab badge and install cell, find problems, list lessons.

Command line (run by `make sync`):
    python -m course_lib.nbtools sync notebooks/*.ipynb    # clean and rewrite badge + first code cell
    python -m course_lib.nbtools check notebooks/*.ipynb   # print problems, exit 1 if any
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

from course_lib.colab import INSTALL_MARKER, badge_markdown, badge_url
from course_lib.colab import install_cell as colab_install_cell
from course_lib.paths import course_root

BADGE_LINE = re.compile(r"^\[!\[Open In Colab\]\([^)]*\)\]\(([^)]*)\)[ \t]*$", re.MULTILINE)


def relative_name(path: Path) -> str:
    """`path` relative to the course root, with forward slashes (the form badges use)."""
    return Path(path).resolve().relative_to(course_root()).as_posix()


def read(path: Path) -> dict:
    """The notebook at `path`, as nbformat reads it (cell sources joined into strings)."""
    return nbformat.read(str(path), as_version=4)


def write(path: Path, nb: dict) -> None:
    """Write `nb` the way Jupyter saves notebooks, so that saving in JupyterLab changes nothing."""
    nbformat.write(nbformat.from_dict(nb), str(path))


def source(cell: dict) -> str:
    return cell.get("source", "")


def strip(nb: dict) -> dict:
    """Remove outputs, execution counts and widget state, in place; return the notebook."""
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.get("metadata", {}).pop("execution", None)
    nb.get("metadata", {}).pop("widgets", None)
    return nb


def first_code_cell(nb: dict) -> dict | None:
    return next((c for c in nb.get("cells", []) if c.get("cell_type") == "code"), None)


def problems(path: Path) -> list[str]:
    """What is wrong with a committed notebook: outputs, execution counts, widget state,
    a wrong badge or install cell."""
    name = relative_name(path)
    nb = read(path)
    found = []
    for i, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            found.append(f"{name}: cell {i} has outputs")
        if cell.get("execution_count") is not None:
            found.append(f"{name}: cell {i} has an execution count")
    if "widgets" in nb.get("metadata", {}):
        found.append(f"{name}: notebook metadata holds widget state")
    cells = nb.get("cells", [])
    badges = BADGE_LINE.findall(source(cells[0])) if cells and cells[0].get("cell_type") == "markdown" else []
    if badges != [badge_url(name)]:
        found.append(f"{name}: the first cell's Colab badge should point at {badge_url(name)}, "
                     f"found {badges or 'none'}")
    first = first_code_cell(nb)
    if first is None or source(first) != colab_install_cell(name):
        found.append(f"{name}: the first code cell is not the Colab install cell from course_lib/colab.py")
    return found


def sync(path: Path) -> None:
    """Strip `path` and (re)write its Colab badge (in the first markdown cell) and install cell (first code cell)."""
    write(path, synced(read(path), relative_name(path)))


def synced(nb: dict, name: str) -> dict:
    """`nb` stripped, with the Colab badge and install cell of the notebook at `name` (relative to the course root)."""
    nb = strip(nb)
    cells = nb["cells"]
    title = cells[0]
    text = source(title)
    if BADGE_LINE.search(text):
        text = BADGE_LINE.sub(badge_markdown(name), text, count=1)
    else:
        head, _, rest = text.partition("\n")
        text = f"{head}\n\n{badge_markdown(name)}\n{rest}".rstrip("\n")
    title["source"] = text
    install = {"cell_type": "code", "execution_count": None, "id": "colab-install", "metadata": {}, "outputs": [],
               "source": colab_install_cell(name)}
    first = first_code_cell(nb)
    if first is not None and source(first).startswith(INSTALL_MARKER):
        first.update(install)
    else:
        cells.insert(1, install)
    return nb


def lessons(folder: str = "notebooks") -> list[tuple[str, str]]:
    """(file name, title) of every lesson notebook in `folder`, in course order; the title is the first heading."""
    found = []
    for path in sorted((course_root() / folder).glob("[0-9][0-9]*_*.ipynb")):
        cells = read(path).get("cells", [])
        heading = next((line.lstrip("# ").strip() for c in cells if c.get("cell_type") == "markdown"
                        for line in source(c).splitlines() if line.startswith("# ")), path.stem)
        found.append((path.name, heading))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib.nbtools", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["sync", "check"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "sync":
        for path in args.notebooks:
            sync(path)
            print(f"synced {relative_name(path)}")
        return 0
    found = [p for path in args.notebooks for p in problems(path)]
    print("\n".join(found) if found else f"{len(args.notebooks)} notebook(s) clean")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
