"""Execute one submission cell by cell and record each check cell's grade (run by `grade.py` in a child process).

    python -m course_lib.autograde.execute NOTEBOOK RESULTS KERNEL_PID_FILE TIME_LIMIT SANDBOX_DIR

The kernel starts with COURSE_SANDBOX_DIR=SANDBOX_DIR, so the guard in `sandbox/sitecustomize.py` confines it.
After each check cell one JSON line goes to RESULTS (grade id, points from nbgrader's `determine_grade`, the
error or stderr text); a line for the first error outside check cells, and one when the kernel dies. RESULTS
is written as the run goes, so a run stopped at the time limit still keeps the checks it reached.
"""

from __future__ import annotations

import json
import os
import sys


def error_text(cell) -> str:
    """The error a cell raised (name and message), else what it wrote to stderr, else ''."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stderr")


def main(argv: list[str]) -> int:
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError
    from nbgrader.utils import determine_grade, is_grade

    notebook, results, pid_file, limit, sandbox = argv
    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=int(float(limit)), allow_errors=True, kernel_name="python3",
                            resources={"metadata": {"path": sandbox}})
    env = dict(os.environ, COURSE_SANDBOX_DIR=sandbox)
    reported_error = False
    with open(results, "a", encoding="utf-8") as out:
        def record(**row):
            out.write(json.dumps(row) + "\n")
            out.flush()

        with client.setup_kernel(env=env, cwd=sandbox):
            with open(pid_file, "w") as pids:
                pids.write(str(client.km.provisioner.process.pid))
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index)
                except DeadKernelError as error:
                    record(kind="dead", cell=index, text=f"the kernel died in cell {index}: {error}")
                    return 0
                if is_grade(cell):
                    points, _ = determine_grade(cell)
                    record(kind="check", grade_id=cell.metadata["nbgrader"]["grade_id"], points=points,
                           text=error_text(cell))
                elif not reported_error and error_text(cell) and any(
                        o.get("output_type") == "error" for o in cell.outputs):
                    reported_error = True
                    record(kind="error", cell=index, text=error_text(cell))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
