"""Notebooks find data/ the same way from every folder the course runs in."""

import subprocess
import sys

import pytest

from course_lib import paths

ROOT = paths.course_root()


@pytest.mark.parametrize("folder", ["notebooks", "exercises", "solutions", "data", "."])
def test_data_dir_is_the_same_from_every_course_folder(monkeypatch, folder):
    monkeypatch.chdir(ROOT / folder)
    assert paths.data_dir() == ROOT / "data"


def test_found_from_a_fresh_process_in_a_lesson_folder():
    out = subprocess.run([sys.executable, "-c", "import course_lib; print(course_lib.data_dir())"],
                         cwd=ROOT / "solutions", capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(ROOT / "data")


def test_environment_variable_points_at_another_checkout(monkeypatch, tmp_path):
    (tmp_path / "course_lib").mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    assert paths.data_path("tickets", "x.jsonl") == tmp_path / "data" / "tickets" / "x.jsonl"


def test_environment_variable_to_a_wrong_folder_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="needs both course_lib/ and data/"):
        paths.course_root()


def test_build_path_is_absolute_and_under_the_course_root(monkeypatch, tmp_path):
    from course_lib import build_path, course_root

    monkeypatch.chdir(tmp_path)  # a notebook kernel may start in notebooks/ or anywhere else
    path = build_path("03_full_sft")
    assert path.is_absolute() and path == course_root() / "build" / "03_full_sft"
