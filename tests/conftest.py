"""Shared test set-up: everything runs offline, and any attempt to reach the network fails the session."""

import importlib.util
import os
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
NETGUARD_LOG.parent.mkdir(exist_ok=True)
NETGUARD_LOG.write_text("")
os.environ["COURSE_NETGUARD_LOG"] = str(NETGUARD_LOG)
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TESTS / "netguard"), os.environ.get("PYTHONPATH")]))
# The same guard in this process: loading the module installs it.
_spec = importlib.util.spec_from_file_location("course_netguard", TESTS / "netguard" / "sitecustomize.py")
_spec.loader.exec_module(importlib.util.module_from_spec(_spec))


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
