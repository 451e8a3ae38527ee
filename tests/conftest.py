"""Shared test set-up: everything runs offline, and any attempt to reach the network fails the session."""

import importlib.util
import os
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
NETGUARD_LOG = ROOT / "build" / "netguard.log"

# Set before any Hugging Face library is imported, in this process and in every kernel it starts.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
os.environ["MPLBACKEND"] = "Agg"  # notebook plots render without a screen


def usable_cores() -> int:
    """The CPU cores this process may run on (a container or `taskset` may allow fewer than the machine has)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# `make test` runs the files on pytest-xdist workers side by side (pyproject.toml's addopts). Each worker, and every
# kernel it starts, computes on its share of the cores: two processes of one thread each do more on two cores than one
# process of two. A thread count set from outside (`make perturb PERTURB=1thread`) is kept.
WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
if WORKERS > 1:
    THREADS = str(max(1, usable_cores() // WORKERS))
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(variable, THREADS)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
NETGUARD_LOG.parent.mkdir(exist_ok=True)
if not os.environ.get("PYTEST_XDIST_WORKER"):  # emptied once per run, by the process that starts the workers
    NETGUARD_LOG.write_text("")
os.environ["COURSE_NETGUARD_LOG"] = str(NETGUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS / "netguard"), os.environ.get("PYTHONPATH")]))
# The same guard in this process: loading the module installs it.
_spec = importlib.util.spec_from_file_location("course_netguard", TESTS / "netguard" / "sitecustomize.py")
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))


# The order the files are handed to the workers in (pytest-xdist, `--dist loadfile`, in collection order): the
# longest first, and every notebook after the lessons whose saved models it loads, so that it finds them saved
# (lesson 06 loads 04's adapter; lesson 07 loads the models of 03 to 06). Files not named here follow, in
# pytest's order. Without xdist the same order holds.
FIRST = ["notebooks/03_full_sft.ipynb", "notebooks/04_lora.ipynb", "notebooks/06_dpo.ipynb",
         "notebooks/05b_qlora_training.ipynb",
         "tests/test_autograde.py", "notebooks/01_strategy.ipynb", "notebooks/07_evaluation.ipynb",
         "tests/test_training.py", "tests/test_exercises.py"]


def pytest_collection_modifyitems(session, config, items):
    rank = {name: i for i, name in enumerate(FIRST)}

    def key(item):
        name = Path(str(item.path)).resolve().relative_to(ROOT).as_posix()
        return rank.get(name, len(FIRST))

    items.sort(key=key)  # stable: the items of a file keep their order, other files keep pytest's


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any process tried to reach the network, even if the library swallowed the error."""
    attempts = NETGUARD_LOG.read_text().strip() if NETGUARD_LOG.exists() else ""
    if attempts:
        print(f"\nNetwork access was attempted during an offline test run (see {NETGUARD_LOG}):\n{attempts}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def tokenizer():
    """The tiny model's tokenizer, shared by the training tests."""
    from course_lib.models import load_model_and_tokenizer
    from course_lib.profiles import PROFILES

    return load_model_and_tokenizer(PROFILES["tiny"])[1]
