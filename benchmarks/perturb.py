"""Run the lessons and the numeric tests as another machine would, and tabulate how far each claim is from failing.

Numbers from training move with the CPU's kernels (AVX-512, AVX2, generic), the thread count and the seed. A
claim a lesson asserts must hold on every learner's machine, so its margin must exceed that movement. This
script executes notebooks (and the by-hand-equals-library tests) under a named configuration, records every
`course_lib.claims.claim(...)` with its value and margin, and writes one table over all configurations run so far.

    python benchmarks/perturb.py run avx2,seed+1              # every lesson and the numeric tests
    python benchmarks/perturb.py run native 03 04 --no-tests   # lessons 03 and 04 only
    python benchmarks/perturb.py run avx2 --tests-only         # the numeric tests only
    python benchmarks/perturb.py record native build/claims.jsonl  # a make test run's claims log, as `native`
    python benchmarks/perturb.py table                        # benchmarks/claims.md from every recorded run

A configuration is a comma-separated list of knobs (`make perturb PERTURB=...` passes one):

    native      this machine as it is
    avx2        PyTorch, MKL and oneDNN kernels capped at AVX2, as on a CPU without AVX-512
    generic     PyTorch's generic kernels, MKL and oneDNN capped at SSE4.2, as on an old CPU
    1thread     one thread (OMP_NUM_THREADS=1), as on a 1-core machine: other sums, other last bits
    seed+N      every training seed shifted by N (COURSE_SEED=N)

Each configuration trains into its own folder (build/perturb/<config>), so saved models are never shared across
configurations, and records into benchmarks/claims/<config>.jsonl; running some notebooks again replaces only
their records, and a notebook that runs to its end retires, from every configuration, the claims it no longer
makes. A claim is portable when its smallest margin over all configurations exceeds its spread (largest
minus smallest margin): another machine would have to move it by more than everything measured to flip it.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "benchmarks" / "claims"  # one JSONL file per configuration
TABLE = ROOT / "benchmarks" / "claims.md"
NUMERIC_TESTS = ["tests/test_dpo.py", "tests/test_lora.py", "tests/test_quantization.py", "tests/test_training.py",
                 "tests/test_evaluation.py"]  # the by-hand-equals-library checks and the statistics
HANG_GUARD_S = 3600  # a cell still running after an hour is hung, not slow

KNOBS = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
    "generic": {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2", "ONEDNN_MAX_CPU_ISA": "SSE41"},
    "1thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}


def knob_environment(config: str) -> dict[str, str]:
    """The environment variables that make this machine compute as `config` says; exits with a message if unknown."""
    env: dict[str, str] = {}
    for knob in config.split(","):
        seed = re.fullmatch(r"seed\+(\d+)", knob)
        if seed:
            env["COURSE_SEED"] = seed.group(1)
        elif knob in KNOBS:
            env.update(KNOBS[knob])
        else:
            sys.exit(f"perturb: unknown knob {knob!r} in {config!r}. Knobs: {', '.join(KNOBS)}, seed+N (e.g. seed+1), "
                     "joined by commas, e.g. avx2,seed+1")
    return env


def lesson_of(notebook: str) -> str:
    """The lesson a notebook's file name starts with: "03" for 03_full_sft.ipynb, "05a" for 05a_4bit_formats.ipynb."""
    return notebook.split("_")[0]


def notebooks(selection: list[str]) -> list[Path]:
    """The lesson notebooks named by number (03; 05 for both 05a and 05b, 05a for one) or path; all of them when
    `selection` is empty."""
    every = sorted((ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    if not selection:
        return every
    chosen = []
    for item in selection:
        matches = [p for p in every if re.match(rf"{re.escape(item)}[a-z]?_", p.name) or p.name == Path(item).name]
        if not matches:
            sys.exit(f"perturb: no notebook {item!r}. Choose from: {', '.join(lesson_of(p.name) for p in every)}")
        chosen += matches
    return chosen


def execute(notebook: Path, log: Path) -> list[dict]:
    """Run `notebook` top to bottom in a fresh kernel (claims logged to `log`); the errors it raised, one per cell."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    os.environ["COURSE_CLAIMS_LOG"] = str(log)  # the kernel inherits this process's environment
    os.environ["COURSE_CLAIMS_KEEP_GOING"] = "1"  # a failed claim is logged, and the claims after it measured too
    client = NotebookClient(nb, timeout=HANG_GUARD_S, kernel_name="python3", allow_errors=True,
                            resources={"metadata": {"path": str(notebook.parent)}})
    client.execute()
    errors = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                errors.append({"cell": cell.get("execution_count"),
                               "error": f"{output['ename']}: {output['evalue']}"[:300]})
    return errors


def run_tests(env: dict[str, str]) -> list[dict]:
    """Run the numeric tests under `env`; one record per test file: passed, failed and the failing tests."""
    report = ROOT / "build" / "perturb" / "numeric-tests.xml"
    report.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
                    f"--junitxml={report}", *NUMERIC_TESTS], cwd=ROOT, env={**os.environ, **env}, check=False)
    files: dict[str, dict] = {}
    for case in ET.parse(report).iter("testcase"):
        name = case.get("classname", "").replace(".", "/") + ".py"
        entry = files.setdefault(name, {"tests": name, "passed": 0, "failed": []})
        if case.find("failure") is not None or case.find("error") is not None:
            entry["failed"].append(case.get("name"))
        elif case.find("skipped") is None:
            entry["passed"] += 1
    return list(files.values())


def run(config: str, selection: list[str], with_tests: bool, with_notebooks: bool = True) -> None:
    env = knob_environment(config)
    name = ",".join(sorted(config.split(",")))  # one file per configuration, whatever the knobs' order
    os.environ.update(env)
    os.environ["COURSE_BUILD"] = str(ROOT / "build" / "perturb" / name)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    RECORDS.mkdir(parents=True, exist_ok=True)
    path = RECORDS / f"{name}.jsonl"
    chosen = notebooks(selection) if with_notebooks else []
    kept = [r for r in read_records(path) if r.get("notebook") not in {p.name for p in chosen}
            and not (with_tests and "tests" in r)]
    fresh = []
    scratch = ROOT / "build" / "perturb" / f"{name}.claims.jsonl"
    for notebook in chosen:
        scratch.unlink(missing_ok=True)
        started = time.time()
        print(f"[{name}] {notebook.name} ...", flush=True)
        errors = execute(notebook, scratch)
        claims = read_records(scratch)
        seconds = round(time.time() - started)
        fresh += [{"notebook": notebook.name, **c} for c in claims]
        fresh += [{"notebook": notebook.name, **e} for e in errors]
        fresh.append({"notebook": notebook.name, "seconds": seconds})
        failed = sum(not c["holds"] for c in claims)  # logged, not raised: they are not among `errors`
        print(f"[{name}] {notebook.name}: {len(claims)} claims, {failed} failed, {len(errors)} cells with errors, "
              f"{seconds} s", flush=True)
        write_records(path, name, kept + fresh)  # after each notebook, so an interrupted run keeps what it measured
        if not errors:  # it ran to its end: what it claimed is what the lesson claims now
            retire_claims(notebook.name, claims)
    if with_tests:
        fresh += run_tests(env)
    write_records(path, name, kept + fresh)
    print_run(fresh, name)
    write_table()


def record(config: str, log: Path) -> None:
    """Add a claims log written outside this script as configuration `config`, replacing its lessons' records.

    e.g. `COURSE_CLAIMS_LOG=build/claims.jsonl make test` on an idle machine, then `record native build/claims.jsonl`.
    Each claim names its lesson (`course_lib.claims.begin_lesson`); the run time of a notebook is not known there.
    """
    knob_environment(config)  # an unknown knob is refused here too
    name = ",".join(sorted(config.split(",")))
    claims = read_records(Path(log))
    nameless = [c for c in claims if not c.get("lesson")]
    if nameless:
        sys.exit(f"perturb: {len(nameless)} claims in {log} name no lesson (the first: {nameless[0]['claim']!r}): "
                 "they were logged outside a lesson that called start_lesson")
    fresh = [{"notebook": notebooks([c["lesson"]])[0].name, **c} for c in claims]
    path = RECORDS / f"{name}.jsonl"
    replaced = {c["notebook"] for c in fresh}
    kept = [r for r in read_records(path) if r.get("notebook") not in replaced]
    write_records(path, name, kept + fresh)
    for notebook in sorted(replaced):  # a make test run that wrote the log passed: every lesson ran to its end
        retire_claims(notebook, [c for c in fresh if c["notebook"] == notebook])
    print_run(fresh, name)
    write_table()


def retire_claims(notebook: str, claims: list[dict]) -> None:
    """Drop, from every configuration's records, the claims of `notebook` that its latest complete run no longer made.

    A claim reworded or removed from a lesson would otherwise stay in the table with the runs from before.
    """
    current = {c["claim"] for c in claims}
    for path in sorted(RECORDS.glob("*.jsonl")):
        records = read_records(path)
        kept = [r for r in records
                if not ("claim" in r and r.get("notebook") == notebook and r["claim"] not in current)]
        if len(kept) < len(records):
            write_records(path, path.stem, [{k: v for k, v in r.items() if k != "config"} for r in kept])


def write_records(path: Path, name: str, records: list[dict]) -> None:
    path.write_text("".join(json.dumps({"config": name, **r}) + "\n" for r in records))


def read_records(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def print_run(records: list[dict], name: str) -> None:
    """This configuration's claims, one line each, then its errors and test results."""
    print(f"\nclaims under {name}:")
    print(f"{'notebook':<24} {'cell':>4}  {'value':>9} {'op':>2} {'bound':>9} {'margin':>9}  ok  claim")
    for r in (r for r in records if "claim" in r):
        print(f"{r['notebook']:<24} {r['cell'] or '':>4}  {r['value']:9.4g} {r['op']:>2} {r['bound']:9.4g} "
              f"{r['margin']:+9.4g}  {'yes' if r['holds'] else 'NO '}  {r['claim']}")
    for r in (r for r in records if "error" in r):
        print(f"ERROR {r['notebook']} cell {r['cell']}: {r['error']}")
    for r in (r for r in records if "tests" in r):
        print(f"{r['tests']}: {r['passed']} passed, {len(r['failed'])} failed {' '.join(r['failed'])}")


def drop_retired_notebooks() -> list[str]:
    """Remove the records of notebooks that no longer exist (a lesson renamed or split); return their names."""
    existing = {path.name for path in (ROOT / "notebooks").glob("*.ipynb")}
    retired: set[str] = set()
    for path in sorted(RECORDS.glob("*.jsonl")):
        records = read_records(path)
        kept = [r for r in records if "notebook" not in r or r["notebook"] in existing]
        if len(kept) < len(records):
            retired |= {r["notebook"] for r in records if r not in kept}
            write_records(path, path.stem, [{k: v for k, v in r.items() if k != "config"} for r in kept])
    return sorted(retired)


def write_table() -> None:
    """benchmarks/claims.md: every claim's value range, smallest margin and spread over all recorded configurations."""
    for name in drop_retired_notebooks():
        print(f"perturb: dropped the records of {name}, which notebooks/ no longer holds")
    records = [r for path in sorted(RECORDS.glob("*.jsonl")) for r in read_records(path)]
    configs = sorted({r["config"] for r in records})
    claims: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in (r for r in records if "claim" in r):
        claims[r["notebook"], r["claim"]].append(r)
    lines = [
        "# Claims under perturbation",
        "",
        "Written by `make perturb` (`benchmarks/perturb.py`); do not edit by hand. Every claim a lesson asserts with",
        "`claim(...)`, over every configuration recorded in `benchmarks/claims/`. Margin: how far the value is from",
        "the bound, positive when the claim holds. Spread: largest minus smallest margin. Portable: the smallest",
        "margin exceeds the spread.",
        "",
        "Configurations: " + ", ".join(f"`{c}`" for c in configs) + ".",
        "",
        "| notebook | cell | claim | op | bound | value min | value max | min margin | spread | runs | portable |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    not_portable = 0
    for (notebook, text), rows in sorted(claims.items(), key=lambda item: (item[0][0], item[1][0]["cell"] or 0)):
        margins = [r["margin"] for r in rows]
        values = [r["value"] for r in rows]
        bounds = sorted({round(r["bound"], 6) for r in rows})
        bound = f"{bounds[0]:.4g}" if len(bounds) == 1 else f"{bounds[0]:.4g} to {bounds[-1]:.4g}"
        spread = max(margins) - min(margins)
        portable = min(margins) > spread
        not_portable += not portable
        held = sum(r["holds"] for r in rows)
        lines.append(f"| {lesson_of(notebook)} | {rows[0]['cell'] or ''} | {text} | {rows[0]['op']} | {bound} | "
                     f"{min(values):.4g} | {max(values):.4g} | {min(margins):+.4g} | {spread:.4g} | "
                     f"{held}/{len(rows)} held | {'yes' if portable else '**no**'} |")
    lines += ["", f"{len(claims)} claims, {not_portable} not portable.", ""]
    errors = [r for r in records if "error" in r]
    if errors:
        lines += ["## Cells that raised", ""] + [f"- `{r['config']}` {r['notebook']} cell {r['cell']}: {r['error']}"
                                                  for r in errors] + [""]
    tests = [r for r in records if "tests" in r]
    if tests:
        lines += ["## Numeric tests", "", "| configuration | file | passed | failed |", "| --- | --- | --- | --- |"]
        lines += [f"| `{r['config']}` | {r['tests']} | {r['passed']} | {', '.join(r['failed']) or 0} |" for r in tests]
        lines.append("")
    timing = [r for r in records if "seconds" in r]
    if timing:
        lines += ["## Run time (s) per notebook", "", "| notebook | " + " | ".join(f"`{c}`" for c in configs) + " |",
                  "| --- |" + " --- |" * len(configs)]
        seconds = {(r["notebook"], r["config"]): r["seconds"] for r in timing}
        for notebook in sorted({r["notebook"] for r in timing}):
            lines.append(f"| {notebook} | " + " | ".join(str(seconds.get((notebook, c), "")) for c in configs) + " |")
        lines.append("")
    TABLE.write_text("\n".join(lines))
    print(f"\n{TABLE.relative_to(ROOT)}: {len(claims)} claims over {len(configs)} configurations, "
          f"{not_portable} not portable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_parser = sub.add_parser("run", help="execute notebooks and the numeric tests under one configuration")
    run_parser.add_argument("config", help="knobs joined by commas: native, avx2, generic, 1thread, seed+N")
    run_parser.add_argument("notebooks", nargs="*", help="lesson numbers (03) or notebook paths; default: every lesson")
    run_parser.add_argument("--no-tests", dest="tests", action="store_false", help="skip the numeric tests")
    run_parser.add_argument("--tests-only", dest="notebooks_too", action="store_false", help="run no notebook")
    record_parser = sub.add_parser("record", help="add a claims log (COURSE_CLAIMS_LOG) of a make test run")
    record_parser.add_argument("config", help="the knobs the run was made under, e.g. native")
    record_parser.add_argument("log", type=Path, help="the JSONL file COURSE_CLAIMS_LOG named")
    sub.add_parser("table", help="write benchmarks/claims.md from every recorded configuration")
    args = parser.parse_args()
    if args.command == "run":
        run(args.config, args.notebooks, args.tests, args.notebooks_too)
    elif args.command == "record":
        record(args.config, args.log)
    else:
        write_table()


if __name__ == "__main__":
    main()
