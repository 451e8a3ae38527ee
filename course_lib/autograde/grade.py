"""Grade a folder of submitted exercise notebooks into a score table (`make grade SUBMISSIONS=...`).

The folder holds one sub-folder per student, named for the student, with that student's notebooks under their
exercise names (`SUBMISSIONS/ada/03_full_sft.ipynb`). Each notebook:

1. is read; a file that is not a valid notebook gets a row saying why, naming the line of a JSON error;
2. has its check cells replaced by those of `solutions/` (hidden tests included), matched by nbgrader grade id,
   so an edited or deleted check cannot pass; a missing check cell scores 0 and says so;
3. runs in a fresh temporary folder, in a child process that starts its own kernel, under the guard of
   `sandbox/sitecustomize.py` (no network, no file changes outside that folder, no new processes), and is
   stopped, kernel and all, after `time_limit` seconds;
4. scores each check cell as nbgrader does (`nbgrader.utils.determine_grade`: the check's points when the cell
   raises nothing and writes nothing to stderr, else 0), with the check's message.

Nothing a submission does stops the run: every notebook gets its rows.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from course_lib.exercisegen import solution_notebooks
from course_lib.paths import course_root

SANDBOX = Path(__file__).resolve().parent / "sandbox"
TIME_LIMIT = 300  # seconds per notebook: a hang guard; every solution notebook runs in well under a minute
MESSAGE_CHARS = 400  # longest message kept in the table


@dataclass
class Score:
    """One exercise of one student's notebook."""

    student: str
    notebook: str
    exercise: str  # the check cell's nbgrader grade id
    points: float
    max_points: float
    message: str = ""  # why points were lost: the check's message, or what stopped the notebook


@dataclass
class Graded:
    """One student's notebook: its scores and what else happened while it ran."""

    student: str
    notebook: str
    scores: list[Score] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # network or file access refused, an error outside the checks

    @property
    def total(self) -> float:
        return sum(s.points for s in self.scores)

    @property
    def max_points(self) -> float:
        return sum(s.max_points for s in self.scores)


def one_line(text: str, limit: int = MESSAGE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_cells(nb) -> dict[str, dict]:
    """The check (grade) cells of a notebook by grade id, in order."""
    return {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells
            if c.get("metadata", {}).get("nbgrader", {}).get("grade")}


def read_submission(path: Path):
    """The notebook at `path`, or a ValueError saying why it is not one (with the line of a JSON error)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not a text file (byte {error.start} is not UTF-8)") from error
    try:
        json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}") from error
    try:
        nb = nbformat.reads(text, as_version=4)
        nbformat.validate(nb)
    except Exception as error:  # nbformat raises several kinds for a JSON file that is not a notebook
        raise ValueError(f"valid JSON but not a Jupyter notebook: {one_line(error, 200)}") from error
    return nb


def restore_checks(nb, source) -> list[str]:
    """Replace the submission's check cells by the source's, in place; return the grade ids it had lost."""
    wanted = check_cells(source)
    present = set()
    for cell in nb.cells:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in wanted and cell.cell_type == "code":
            original = wanted[grade_id]
            cell.source = original.source
            cell.metadata = nbformat.from_dict(json.loads(json.dumps(original.metadata)))
            cell.outputs = []
            present.add(grade_id)
        elif cell.get("metadata", {}).get("nbgrader", {}).get("grade"):
            cell.metadata["nbgrader"]["grade"] = False  # a check cell the source does not have earns nothing
    return [g for g in wanted if g not in present]


def kill_group(pid: int) -> None:
    """Kill the process group led by `pid` (the runner's or the kernel's); nothing if it is gone already."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def sandbox_env(box: Path, work: Path) -> dict[str, str]:
    """The environment of the runner and kernel: offline, every cache and temporary file inside `box`."""
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL", "SYSTEMROOT") if key in os.environ}
    env.update({
        "HOME": str(box), "TMPDIR": str(box / "tmp"), "MPLCONFIGDIR": str(box / ".matplotlib"),
        "IPYTHONDIR": str(box / ".ipython"), "HF_HOME": str(box / ".huggingface"), "COURSE_BUILD": str(box / "build"),
        "JUPYTER_RUNTIME_DIR": str(work / "runtime"), "JUPYTER_DATA_DIR": str(work / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(work / "jupyter-config"),
        "PYTHONPATH": str(SANDBOX), "PYTHONDONTWRITEBYTECODE": "1", "COURSE_ROOT": str(course_root()),
        "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "MPLBACKEND": "Agg", "COURSE_NETGUARD_FILE": str(course_root() / "tests" / "netguard" / "sitecustomize.py"),
        "COURSE_NETGUARD_LOG": str(work / "network.log"), "COURSE_SANDBOX_LOG": str(work / "files.log"),
    })
    return env


def run_notebook(nb, time_limit: float) -> tuple[list[dict], list[str], bool]:
    """Run `nb` in a fresh sandbox; return its result lines, the guards' log lines, and whether it hit the limit."""
    work = Path(tempfile.mkdtemp(prefix="course-grade-"))
    try:
        box = work / "box"
        for folder in (box / "tmp", work / "runtime"):
            folder.mkdir(parents=True)
        notebook, results, pid_file = box / "submission.ipynb", work / "results.jsonl", work / "kernel.pid"
        nbformat.write(nb, str(notebook))
        results.touch()
        with open(work / "runner.log", "wb") as log:
            runner = subprocess.Popen(
                [sys.executable, "-m", "course_lib.autograde.execute", str(notebook), str(results), str(pid_file),
                 str(time_limit), str(box)],
                cwd=box, env=sandbox_env(box, work), stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                start_new_session=True)
            timed_out = False
            try:
                runner.wait(timeout=time_limit)
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                kill_group(runner.pid)
                if pid_file.exists() and pid_file.read_text().strip().isdigit():
                    kill_group(int(pid_file.read_text()))  # the kernel runs in a session of its own
                runner.wait()
        lines = [json.loads(line) for line in results.read_text().splitlines() if line.strip()]
        guards = [line for name in ("network.log", "files.log") if (work / name).exists()
                  for line in (work / name).read_text().splitlines() if line.strip()]
        if runner.returncode not in (0, None) and not timed_out and not lines:
            tail = (work / "runner.log").read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            lines.append({"kind": "dead", "text": f"the notebook could not be run: {tail[0]}"})
        return lines, guards, timed_out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def grade_notebook(path: Path, student: str, source, time_limit: float = TIME_LIMIT) -> Graded:
    """Grade one submitted notebook against its source (the solution notebook)."""
    graded = Graded(student=student, notebook=path.name)
    checks = check_cells(source)
    maxima = {g: float(c.metadata["nbgrader"]["points"]) for g, c in checks.items()}

    def all_zero(message: str) -> Graded:
        graded.scores = [Score(student, path.name, g, 0.0, maxima[g], message) for g in checks]
        return graded

    try:
        nb = read_submission(path)
    except ValueError as error:
        return all_zero(f"{path.name} is {error}: nothing was run. Submit the notebook as Jupyter saved it.")
    missing = restore_checks(nb, source)
    lines, guards, timed_out = run_notebook(nb, time_limit)
    results = {line["grade_id"]: line for line in lines if line.get("kind") == "check"}
    stop = next((line["text"] for line in lines if line.get("kind") == "dead"), None)
    if timed_out:
        stop = f"the notebook was stopped after its {time_limit:g} s limit (an endless loop?)"
    graded.notes = [one_line(g, 200) for g in dict.fromkeys(guards)]
    graded.notes += [f"cell {line['cell']} raised {one_line(line['text'], 200)}" for line in lines
                     if line.get("kind") == "error"]
    for grade_id in checks:
        if grade_id in missing:
            score = Score(student, path.name, grade_id, 0.0, maxima[grade_id],
                          "the check cell was deleted from the submission")
        elif grade_id in results:
            points = results[grade_id]["points"]
            score = Score(student, path.name, grade_id, float(points or 0), maxima[grade_id],
                          "" if points == maxima[grade_id] else one_line(results[grade_id]["text"]
                                                                         or "the check cell wrote to stderr"))
        else:
            score = Score(student, path.name, grade_id, 0.0, maxima[grade_id], f"not reached: {stop or 'not run'}")
        graded.scores.append(score)
    return graded


def submissions(folder: Path) -> list[tuple[str, Path]]:
    """(student, path) for everything in the students' folders, sorted; a file at the top level is a student too."""
    found = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir():
            found += [(entry.name, p) for p in sorted(entry.iterdir())]
        else:
            found.append((entry.stem, entry))
    return found


def grade_folder(folder: Path | str, *, time_limit: float = TIME_LIMIT, progress=print) -> list[Graded]:
    """Grade every submission in `folder` (see the module docstring for its layout)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder: pass the folder that holds one folder per student")
    sources = {p.name: nbformat.read(str(p), as_version=4) for p in solution_notebooks()}
    graded = []
    for student, path in submissions(folder):
        if path.is_dir() or path.name not in sources:
            entry = Graded(student=student, notebook=path.name)
            entry.notes.append(("a folder, not a notebook: put the notebooks directly in the student's folder"
                                if path.is_dir() else "not an exercise notebook") +
                               f"; the exercise notebooks are {', '.join(sorted(sources))}")
            graded.append(entry)
        else:
            graded.append(grade_notebook(path, student, sources[path.name], time_limit))
        progress(f"{student}/{path.name}: {graded[-1].total:g} of {graded[-1].max_points:g}"
                 + (f" ({'; '.join(graded[-1].notes)})" if graded[-1].notes else ""))
    return graded


def write_csv(graded: list[Graded], path: Path) -> None:
    """One row per student × exercise, and a total row per notebook whose message holds the notes."""
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["student", "notebook", "exercise", "points", "max_points", "message"])
        for entry in graded:
            for s in entry.scores:
                writer.writerow([s.student, s.notebook, s.exercise, f"{s.points:g}", f"{s.max_points:g}", s.message])
            writer.writerow([entry.student, entry.notebook, "total", f"{entry.total:g}", f"{entry.max_points:g}",
                             "; ".join(entry.notes)])


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def write_markdown(graded: list[Graded], path: Path) -> None:
    """A table per notebook (student × exercise, total), then every lost point's message."""
    lines = ["# Scores", ""]
    for notebook in dict.fromkeys(entry.notebook for entry in graded):
        entries = [e for e in graded if e.notebook == notebook]
        exercises = list(dict.fromkeys(s.exercise for e in entries for s in e.scores))
        lines += [f"## {notebook}", "", "| student | " + " | ".join(exercises) + " | total |",
                  "| --- |" + " --- |" * (len(exercises) + 1)]
        for e in entries:
            points = {s.exercise: f"{s.points:g}/{s.max_points:g}" for s in e.scores}
            lines.append(f"| {cell(e.student)} | " + " | ".join(points.get(x, "–") for x in exercises)
                         + f" | {e.total:g}/{e.max_points:g} |")
        lines.append("")
        for e in entries:
            messages = {s.message for s in e.scores}
            if len(e.scores) > 1 and len(messages) == 1 and "" not in messages:  # one reason for every exercise
                problems = [f"every exercise: {messages.pop()}"] + e.notes
            else:
                problems = [f"`{s.exercise}`: {s.message}" for s in e.scores if s.message] + e.notes
            if problems:
                lines.append(f"- **{cell(e.student)}**: " + "; ".join(cell(p) for p in problems))
        lines.append("")
    path.write_text("\n".join(lines).rstrip("\n") + "\n", encoding="utf-8")


def write_tables(graded: list[Graded], out_dir: Path | str) -> tuple[Path, Path]:
    """Write `scores.csv` and `scores.md` into `out_dir`; return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = out_dir / "scores.csv", out_dir / "scores.md"
    write_csv(graded, csv_path)
    write_markdown(graded, md_path)
    return csv_path, md_path
