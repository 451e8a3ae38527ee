"""Committed notebooks are clean and carry the right Colab badge and install cell."""

import os
import subprocess
import sys

import nbformat
import pytest

from course_lib import colab, nbtools

from repo_files import ROOT, notebooks

NOTEBOOKS = notebooks()


def test_every_lesson_folder_is_checked():
    assert any(p.parent.name == "notebooks" for p in NOTEBOOKS)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_notebook_is_clean_with_its_own_badge_and_install_cell(path):
    found = nbtools.problems(path)
    assert not found, "\n".join(found) + "\nRun `make sync` to strip outputs and rewrite the badge and first cell."


def test_problems_name_the_file_and_what_is_wrong(tmp_path, monkeypatch):
    lesson = ROOT / "notebooks" / "00_setup_and_tour.ipynb"
    nb = nbformat.read(lesson, as_version=4)
    index = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"][1]  # the first after the install cell
    nb.cells[index].outputs = [nbformat.v4.new_output("stream", text="hello")]
    nb.cells[index].execution_count = 3
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {}}
    nb.cells[0].source = nb.cells[0].source.replace("notebooks/00_setup", "notebooks/01_other")
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "notebooks").mkdir()
    dirty = tmp_path / "notebooks" / "00_setup_and_tour.ipynb"
    nbformat.write(nb, dirty)
    found = "\n".join(nbtools.problems(dirty))
    for expected in [f"notebooks/00_setup_and_tour.ipynb: cell {index} has outputs",
                     f"cell {index} has an execution count", "widget state", "Colab badge should point at"]:
        assert expected in found
    nbtools.sync(dirty)
    assert nbtools.problems(dirty) == []


def test_install_cell_does_nothing_outside_colab(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: calls.append(a))
    assert "google.colab" not in sys.modules
    exec(colab.install_cell("notebooks/00_setup_and_tour.ipynb"), {})
    assert calls == [] and os.getcwd() == str(tmp_path)


def test_install_cell_on_colab_clones_installs_and_enters_the_lesson_folder(monkeypatch):
    calls, moves = [], []
    monkeypatch.setitem(sys.modules, "google.colab", object())
    monkeypatch.setattr(subprocess, "run", lambda args, check: calls.append(args))
    monkeypatch.setattr(os.path, "isdir", lambda path: False)
    monkeypatch.setattr(os, "chdir", moves.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(colab.install_cell("solutions/04_lora.ipynb"), {})
    assert calls[0] == ["git", "clone", "--depth=1", colab.REPO_URL, colab.CLONE_DIR]
    assert calls[1][1:] == ["-m", "pip", "install", "-q", "-e", colab.CLONE_DIR]
    assert moves == [os.path.join(colab.CLONE_DIR, "solutions")]
    assert sys.path[0] == colab.CLONE_DIR


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_sync_leaves_a_clean_notebook_byte_for_byte(path, tmp_path, monkeypatch):
    copy = tmp_path / path.relative_to(ROOT)
    copy.parent.mkdir(parents=True)
    copy.write_bytes(path.read_bytes())
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    nbtools.sync(copy)
    assert copy.read_bytes() == path.read_bytes()
