"""The autograder scores fixture submissions as expected and survives hostile and broken ones."""

import csv
import os
import subprocess
import sys

import nbformat
import pytest

from course_lib.autograde import grade
from course_lib.autograde.__main__ import main as autograde_main

from repo_files import ROOT

LESSON = "07_evaluation.ipynb"  # the quickest notebook: no torch
FULL = 5.0  # its points
LOOP_LIMIT = 40  # seconds for the looping submission: ample for its first check, the others are never reached


def solution(name=LESSON):
    return nbformat.read(str(ROOT / "solutions" / name), as_version=4)


def exercise(name=LESSON):
    return nbformat.read(str(ROOT / "exercises" / name), as_version=4)


def index_of(nb, grade_id):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def insert_after(nb, grade_id, source):
    nb.cells.insert(index_of(nb, grade_id) + 1, nbformat.v4.new_code_cell(source))
    return nb


def save(folder, student, nb, name=LESSON):
    (folder / student).mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(folder / student / name))


# Right on the labels the visible check uses (strings), wrong on the hidden test's 1-5 scores.
OVERFITTED_KAPPA = """
def cohen_kappa(first, second):
    n = len(first)
    observed = sum(a == b for a, b in zip(first, second)) / n
    labels = {x for x in set(first) | set(second) if isinstance(x, str)}
    expected = sum((list(first).count(label) / n) * (list(second).count(label) / n) for label in labels)
    return (observed - expected) / (1 - expected)
"""


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The fixture submissions, graded once; also the instructor's file the hostile ones try to delete."""
    folder = tmp_path_factory.mktemp("submissions")
    instructor = tmp_path_factory.mktemp("instructor")
    keep = instructor / "gradebook.csv"
    keep.write_text("do not delete\n")
    for path in sorted((ROOT / "solutions").glob("[0-9][0-9]*_*.ipynb")):
        save(folder, "complete", solution(path.name), path.name)
    save(folder, "blank", exercise())
    partial = exercise()
    partial.cells[index_of(partial, "bootstrap_interval")] = (
        solution().cells[index_of(solution(), "bootstrap_interval")])
    save(folder, "partial", partial)
    raising = solution()
    raising.cells[index_of(raising, "cohen_kappa")].source = "def cohen_kappa(first, second):\n    return 1 / 0"
    raising.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('a cell that raises at the top level')"))
    save(folder, "raising", raising)
    overfitted = solution()
    overfitted.cells[index_of(overfitted, "cohen_kappa")].source = OVERFITTED_KAPPA
    save(folder, "overfitted", overfitted)
    save(folder, "crashing", insert_after(solution(), "check_bootstrap_interval", "import os\nos._exit(3)"))
    save(folder, "network", insert_after(solution(), "check_bootstrap_interval", """
import socket, urllib.request
for attempt in (lambda: urllib.request.urlopen("http://example.com", timeout=2),
                lambda: socket.create_connection(("203.0.113.7", 80), timeout=2)):
    try:
        attempt()
    except OSError:
        pass  # hostile code that hides the failure
"""))
    save(folder, "deleting", insert_after(solution(), "check_bootstrap_interval", f"""
import os, shutil, subprocess
attempts = [lambda: os.remove({str(keep)!r}), lambda: shutil.rmtree({str(instructor)!r}),
            lambda: open({str(instructor / 'planted.txt')!r}, "w"), lambda: os.rename({str(keep)!r}, "stolen.csv"),
            lambda: subprocess.run(["rm", "-rf", {str(instructor)!r}]), lambda: os.system("rm -rf " + {str(keep)!r})]
for attempt in attempts:
    try:
        attempt()
    except OSError:
        pass
with open("scratch.txt", "w") as own:  # its own folder is writable
    own.write("fine")
"""))
    cheating = exercise()
    cheating.cells[index_of(cheating, "check_bootstrap_interval")].source = "print('all good')"
    del cheating.cells[index_of(cheating, "check_paired_interval")]
    save(folder, "cheating", cheating)
    (folder / "invalid").mkdir()
    (folder / "invalid" / LESSON).write_text('{"cells": [\n  {"cell_type": "code",\n')
    (folder / "notebook_shaped").mkdir()
    (folder / "notebook_shaped" / LESSON).write_text('{"cells": 3}\n')
    (folder / "stray").mkdir()
    (folder / "stray" / "my_notes.ipynb").write_text("{}")
    (folder / "stray" / "week3").mkdir()
    results = grade.grade_folder(folder, time_limit=300, progress=lambda line: None)
    looping = tmp_path_factory.mktemp("looping")  # graded with a shorter limit: the loop waits it out
    save(looping, "looping", insert_after(solution(), "check_bootstrap_interval", "while True:\n    pass"))
    results += grade.grade_folder(looping, time_limit=LOOP_LIMIT, progress=lambda line: None)
    out = tmp_path_factory.mktemp("grades")
    grade.write_tables(results, out)
    by_student = {}
    for entry in results:
        by_student.setdefault(entry.student, {})[entry.notebook] = entry
    return by_student, out, keep, instructor


def scores(entry):
    return {s.exercise: s.points for s in entry.scores}


def messages(entry):
    return {s.exercise: s.message for s in entry.scores}


def test_complete_submissions_score_full_points_on_every_lesson(graded):
    by_student = graded[0]
    assert len(by_student["complete"]) == len(list((ROOT / "solutions").glob("[0-9][0-9]*_*.ipynb")))
    for name, entry in by_student["complete"].items():
        assert entry.total == entry.max_points > 0, (name, messages(entry), entry.notes)
        assert entry.notes == [], entry.notes


def test_blank_scores_zero_with_each_checks_hint(graded):
    entry = graded[0]["blank"][LESSON]
    assert entry.total == 0 and entry.max_points == FULL
    assert all("not written yet" in m and "Hint:" in m for m in messages(entry).values())


def test_partial_scores_the_solved_exercise_only(graded):
    entry = graded[0]["partial"][LESSON]
    assert scores(entry) == {"check_bootstrap_interval": 2, "check_cohen_kappa": 0, "check_paired_interval": 0}


def test_a_raising_notebook_loses_only_the_raising_exercise(graded):
    entry = graded[0]["raising"][LESSON]
    assert scores(entry) == {"check_bootstrap_interval": 2, "check_cohen_kappa": 0, "check_paired_interval": 1}
    assert "`cohen_kappa` raised ZeroDivisionError" in messages(entry)["check_cohen_kappa"]
    assert any("RuntimeError: a cell that raises at the top level" in n for n in entry.notes)


def test_hidden_tests_run_when_graded_only(graded):
    namespace = {}
    exec(OVERFITTED_KAPPA, namespace)
    from course_lib.exercise_checks import check_cohen_kappa

    assert check_cohen_kappa(namespace["cohen_kappa"]) is None  # passes the check learners see
    assert "### BEGIN HIDDEN TESTS" not in nbformat.writes(exercise())
    entry = graded[0]["overfitted"][LESSON]
    assert scores(entry) == {"check_bootstrap_interval": 2, "check_cohen_kappa": 0, "check_paired_interval": 1}
    assert "labels [1, 2, 3, 4, 5]" in messages(entry)["check_cohen_kappa"]


def test_a_crashing_kernel_keeps_the_checks_before_it(graded):
    entry = graded[0]["crashing"][LESSON]
    assert scores(entry) == {"check_bootstrap_interval": 2, "check_cohen_kappa": 0, "check_paired_interval": 0}
    assert "not reached: the kernel died" in messages(entry)["check_cohen_kappa"]


def test_an_endless_loop_is_stopped_at_the_time_limit(graded):
    entry = graded[0]["looping"][LESSON]
    assert scores(entry) == {"check_bootstrap_interval": 2, "check_cohen_kappa": 0, "check_paired_interval": 0}
    assert f"stopped after its {LOOP_LIMIT} s limit" in messages(entry)["check_paired_interval"]


def test_network_access_is_blocked_and_reported(graded):
    entry = graded[0]["network"][LESSON]
    assert entry.total == FULL
    notes = " ".join(entry.notes)
    assert "look up 'example.com'" in notes and "203.0.113.7" in notes and "blocked" in notes


def test_files_outside_the_submissions_folder_are_untouched(graded):
    entry, keep, instructor = graded[0]["deleting"][LESSON], graded[2], graded[3]
    assert keep.read_text() == "do not delete\n"
    assert sorted(p.name for p in instructor.iterdir()) == ["gradebook.csv"]
    assert entry.total == FULL
    notes = " ".join(entry.notes)
    for refused in ("os.remove of", "shutil.rmtree of", "writing to", "os.rename of", "starting a process"):
        assert refused in notes, refused


def test_edited_and_deleted_check_cells_do_not_pass(graded):
    entry = graded[0]["cheating"][LESSON]
    assert entry.total == 0
    assert "not written yet" in messages(entry)["check_bootstrap_interval"]  # the original check was put back
    assert messages(entry)["check_paired_interval"] == "the check cell was deleted from the submission"


def test_broken_files_get_a_row_that_says_why(graded):
    invalid = graded[0]["invalid"][LESSON]
    assert invalid.total == 0 and invalid.max_points == FULL
    assert "is not valid JSON: Expecting property name enclosed in double quotes at line 3" in messages(invalid)[
        "check_cohen_kappa"]
    assert "not a Jupyter notebook" in messages(graded[0]["notebook_shaped"][LESSON])["check_cohen_kappa"]
    assert "not an exercise notebook" in graded[0]["stray"]["my_notes.ipynb"].notes[0]
    assert "a folder, not a notebook" in graded[0]["stray"]["week3"].notes[0]


def test_the_tables_hold_a_row_per_student_and_exercise(graded):
    by_student, out = graded[0], graded[1]
    rows = list(csv.DictReader((out / "scores.csv").open(encoding="utf-8")))
    expected = sum(len(entry.scores) + 1 for notebooks in by_student.values() for entry in notebooks.values())
    assert len(rows) == expected
    partial = {r["exercise"]: r for r in rows if r["student"] == "partial"}
    assert partial["total"]["points"] == "2" and partial["total"]["max_points"] == "5"
    assert "not written yet" in partial["check_cohen_kappa"]["message"]
    markdown = (out / "scores.md").read_text(encoding="utf-8")
    assert "| partial | 2/2 | 0/2 | 0/1 | 2/5 |" in markdown
    assert "**invalid**: every exercise:" in markdown


def test_the_command_line_writes_both_tables(tmp_path, capsys):
    save(tmp_path / "in", "ada", exercise())
    assert autograde_main([str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--time-limit", "120"]) == 0
    assert (tmp_path / "out" / "scores.csv").is_file() and (tmp_path / "out" / "scores.md").is_file()
    assert "ada/07_evaluation.ipynb: 0 of 5" in capsys.readouterr().out
    assert autograde_main([str(tmp_path / "nowhere")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def sandboxed(tmp_path, code):
    """Run `code` in a Python process under the autograder's guard, confined to tmp_path/box."""
    box = tmp_path / "box"
    (box / "tmp").mkdir(parents=True, exist_ok=True)
    env = grade.sandbox_env(box, tmp_path)
    env["COURSE_SANDBOX_DIR"] = str(box)
    return subprocess.run([sys.executable, "-c", code], cwd=box, env=env, capture_output=True, text=True)


def test_the_guard_refuses_changes_outside_and_allows_them_inside(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    run = sandboxed(tmp_path, f"""
import os, socket
for name, attempt in [("write", lambda: open({str(outside)!r}, "a")), ("remove", lambda: os.remove({str(outside)!r})),
                      ("chmod", lambda: os.chmod({str(outside)!r}, 0o777)), ("spawn", lambda: os.system("true")),
                      ("kill", lambda: os.kill(os.getppid(), 0)),
                      ("connect", lambda: socket.create_connection(("192.0.2.1", 80), timeout=1))]:
    try:
        attempt()
        print(name, "allowed")
    except PermissionError:
        print(name, "refused")
    except OSError as error:
        print(name, "refused" if "blocked" in str(error) else f"failed: {{error}}")
open("inside.txt", "w").write("ok")
os.remove("inside.txt")
print(open({str(outside)!r}).read())
""")
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:7] == ["write refused", "remove refused", "chmod refused", "spawn refused",
                                          "kill refused", "connect refused", "keep"]
    assert outside.read_text() == "keep"
    assert "192.0.2.1" in (tmp_path / "network.log").read_text()
    assert "os.remove of" in (tmp_path / "files.log").read_text()


def test_the_guard_is_inactive_without_a_sandbox_folder(tmp_path):
    env = grade.sandbox_env(tmp_path, tmp_path)
    run = subprocess.run([sys.executable, "-c", "import os; os.system('true'); print('ran')"], env=env,
                         capture_output=True, text=True, cwd=tmp_path)
    assert run.stdout.strip() == "ran", run.stderr
    assert os.environ.get("COURSE_SANDBOX_DIR") is None
