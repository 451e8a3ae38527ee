"""Running the course on Google Colab. Introduced in lesson 00.

The repository's address lives here and only here; `make sync` writes it into every notebook's
"Open in Colab" badge and first code cell (tests/test_notebook_hygiene.py checks they agree).
"""

from __future__ import annotations

import sys

REPO_SLUG = "finetuning-course/fine-tuning-llms-hands-on"  # GitHub owner/name; forks change this line
BRANCH = "main"  # branch the badges open
REPO_URL = f"https://github.com/{REPO_SLUG}"
CLONE_DIR = "/content/fine-tuning-llms-hands-on"  # where the first cell clones the course on Colab

BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
INSTALL_MARKER = "# Colab only:"  # first line of every notebook's first code cell


def in_colab() -> bool:
    """True inside a Google Colab runtime."""
    return "google.colab" in sys.modules


def badge_url(notebook: str) -> str:
    """The Colab address that opens `notebook` (a path relative to the course root, e.g. "notebooks/00_x.ipynb")."""
    return f"https://colab.research.google.com/github/{REPO_SLUG}/blob/{BRANCH}/{notebook}"


def badge_markdown(notebook: str) -> str:
    """The "Open in Colab" badge line for `notebook`."""
    return f"[![Open In Colab]({BADGE_IMAGE})]({badge_url(notebook)})"


def install_cell(notebook: str) -> str:
    """Source of the first code cell of `notebook`: on Colab it clones and installs the course; elsewhere nothing."""
    folder = notebook.rsplit("/", 1)[0] if "/" in notebook else "."
    return f'''{INSTALL_MARKER} fetch the course and install it (about 2 minutes). Anywhere else this cell does nothing.
import os
import subprocess
import sys

if "google.colab" in sys.modules:
    # written by `make sync` from course_lib/colab.py
    REPO_URL = "{REPO_URL}"
    CLONE_DIR = "{CLONE_DIR}"
    if not os.path.isdir(CLONE_DIR):
        subprocess.run(["git", "clone", "--depth=1", REPO_URL, CLONE_DIR], check=True)
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-e", CLONE_DIR], check=True)
    sys.path.insert(0, CLONE_DIR)  # the running kernel sees the fresh install without a restart
    os.chdir(os.path.join(CLONE_DIR, "{folder}"))'''
