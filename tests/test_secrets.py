"""No access token is committed anywhere: source, data, notebook outputs or notebook metadata."""

import re

import pytest

from repo_files import ROOT, repo_files

TOKEN_PATTERNS = {
    "Hugging Face token": re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    "Hugging Face org token": re.compile(r"\bapi_org_[A-Za-z0-9]{30,}"),
    "OpenAI-style API key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}"),
    "GitHub token": re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
}
MAX_BYTES = 30_000_000  # larger files are model weights; they are checked by their own tests


def find_tokens(path) -> list[str]:
    """'file:line: kind' for every token-like string in `path`."""
    if path.stat().st_size > MAX_BYTES:
        return []
    text = path.read_bytes().decode("utf-8", errors="ignore")
    found = []
    for kind, pattern in TOKEN_PATTERNS.items():
        for match in pattern.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            found.append(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}: {kind}")
    return found


def test_no_token_in_any_file():
    found = [hit for path in repo_files() for hit in find_tokens(path)]
    assert not found, "Remove these tokens (and revoke them):\n" + "\n".join(found)


@pytest.mark.parametrize("kind", list(TOKEN_PATTERNS))
def test_scanner_finds_a_planted_token_inside_notebook_outputs(tmp_path, kind):
    fake = {  # assembled here so that this file itself holds no token
        "Hugging Face token": "hf" + "_" + "Ab1" * 12,
        "Hugging Face org token": "api" + "_org_" + "Xy9" * 12,
        "OpenAI-style API key": "sk" + "-" + "k3Y" * 12,
        "GitHub token": "ghp" + "_" + "Zz7" * 13,
        "AWS access key": "AKIA" + "ABCD2345EFGH6789",
    }[kind]
    notebook = tmp_path / "leak.ipynb"
    notebook.write_text('{"cells": [{"outputs": [{"text": "login ok\\n"}]}],\n'
                        f' "metadata": {{"note": "token={fake}"}}}}\n')
    assert find_tokens(notebook) == [f"{notebook}:2: {kind}"]
