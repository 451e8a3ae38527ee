"""The tiny profile never reaches the network, and the guard that proves it really blocks."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

GUARD = Path(__file__).resolve().parent / "netguard"

# What a notebook on the tiny profile does first: pick the profile, load the model, generate.
TINY_SETUP = """
from course_lib import start_lesson
from course_lib.chat import generate
from course_lib.models import load_model_and_tokenizer
profile = start_lesson("00")
model, tokenizer = load_model_and_tokenizer(profile)
print(generate(model, tokenizer, ["What is the capital of France?"], max_new_tokens=16))
"""


def run_guarded(code: str, log: Path) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(GUARD), "COURSE_NETGUARD_LOG": str(log)}
    return subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)


def test_guard_refuses_and_logs_a_remote_connection(tmp_path):
    log = tmp_path / "net.log"
    code = ("import socket\ntry:\n socket.create_connection(('203.0.113.7', 443), timeout=1)\n"
            "except OSError as e:\n print(e)")
    result = run_guarded(code, log)
    assert "network access blocked" in result.stdout
    assert "203.0.113.7" in log.read_text()


def test_guard_refuses_name_lookups_but_allows_loopback(tmp_path):
    log = tmp_path / "net.log"
    code = ("import socket\nsocket.getaddrinfo('localhost', 80)\ns = socket.socket()\ns.bind(('127.0.0.1', 0))\n"
            "s.listen()\nc = socket.create_connection(s.getsockname())\nc.close()\n"
            "try:\n socket.getaddrinfo('huggingface.co', 443)\nexcept OSError as e:\n print(e)")
    result = run_guarded(code, log)
    assert result.returncode == 0, result.stderr
    refused = log.read_text().splitlines()
    assert refused and all("huggingface.co" in line for line in refused), refused


# Each line tries one way out; the guard must refuse it and log it. 203.0.113.0/24 is TEST-NET-3 (RFC 5737).
REMOTE_CALLS = (
    "socket.gethostbyname('huggingface.co')",
    "socket.gethostbyname_ex('huggingface.co')",
    "socket.gethostbyaddr('203.0.113.5')",
    "udp.sendto(b'x', ('203.0.113.6', 53))",
    "udp.sendto(b'x', 0, ('203.0.113.7', 53))",
    "udp.sendmsg([b'x'], [], 0, ('203.0.113.8', 53))",
)


def test_guard_refuses_and_logs_old_style_lookups_and_udp_but_allows_loopback(tmp_path):
    log = tmp_path / "net.log"
    code = "\n".join([
        "import socket",
        "assert socket.gethostbyname('localhost').startswith('127.')",
        "socket.gethostbyaddr('127.0.0.1')",
        # UDP on loopback still works: both forms of sendto, and sendmsg, arrive
        "inbox = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "inbox.bind(('127.0.0.1', 0))",
        "udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)",
        "udp.sendto(b'a', inbox.getsockname())",
        "udp.sendto(b'b', 0, inbox.getsockname())",
        "udp.sendmsg([b'c'], [], 0, inbox.getsockname())",
        "print('loopback', b''.join(inbox.recv(8) for _ in range(3)))",
        *(f"try:\n    {call}\n    print('NOT REFUSED:', {call!r})\nexcept OSError as error:\n    print(error)"
          for call in REMOTE_CALLS),
    ])
    result = run_guarded(code, log)
    assert result.returncode == 0, result.stderr
    assert "loopback b'abc'" in result.stdout
    assert "NOT REFUSED" not in result.stdout, result.stdout
    refused = log.read_text().splitlines()
    assert len(refused) == len(REMOTE_CALLS), refused
    for line, target in zip(refused, ["huggingface.co", "huggingface.co", "203.0.113.5", "203.0.113.6", "203.0.113.7",
                                      "203.0.113.8"], strict=True):
        assert "network access blocked" in line and target in line, line


def test_guard_allows_ipv6_loopback_datagrams(tmp_path):
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    log = tmp_path / "net.log"
    code = ("import socket\ninbox = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\n"
            "try:\n    inbox.bind(('::1', 0))\nexcept OSError:\n    print('no ::1')\n    raise SystemExit\n"
            "udp = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)\nudp.sendto(b'six', inbox.getsockname())\n"
            "print(inbox.recv(8))")
    result = run_guarded(code, log)
    assert result.returncode == 0, result.stderr
    if "no ::1" in result.stdout:
        pytest.skip("this machine has no ::1")
    assert "b'six'" in result.stdout
    assert not log.exists() or log.read_text() == ""


def test_tiny_profile_setup_opens_no_connection(tmp_path):
    log = tmp_path / "net.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}  # no offline flags from the test run
    result = subprocess.run([sys.executable, "-c", TINY_SETUP], capture_output=True, text=True, timeout=300,
                            env={**env, "PYTHONPATH": str(GUARD), "COURSE_NETGUARD_LOG": str(log),
                                 "COURSE_PROFILE": "tiny"})
    assert result.returncode == 0, result.stderr
    assert "profile     : tiny" in result.stdout
    assert not log.exists() or log.read_text() == "", log.read_text()


def test_notebook_kernels_run_under_the_guard(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    log = tmp_path / "net.log"
    monkeypatch.setenv("COURSE_NETGUARD_LOG", str(log))  # the kernel inherits it; the session's log stays clean
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import socket\ntry:\n    socket.getaddrinfo('huggingface.co', 443)\n"
        "except OSError as error:\n    print(error)")])
    NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    assert "network access blocked" in nb.cells[0].outputs[0]["text"]
    assert "huggingface.co" in log.read_text()


def test_start_lesson_switches_an_already_imported_hub_offline(tmp_path):
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: a notebook that imported it first stayed online
    code = ("import huggingface_hub, datasets, transformers.utils.hub as th\n"
            "assert not huggingface_hub.is_offline_mode()\n"
            "from course_lib import start_lesson\n"
            "start_lesson('00')\n"
            "import datasets.config\n"
            "print(huggingface_hub.is_offline_mode(), th.is_offline_mode(), datasets.config.HF_HUB_OFFLINE)")
    environ = {k: v for k, v in os.environ.items()
               if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")}
    environ.update(COURSE_PROFILE="tiny", PYTHONPATH=os.pathsep.join([str(GUARD), environ.get("PYTHONPATH", "")]),
                   COURSE_NETGUARD_LOG=str(tmp_path / "net.log"))
    result = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "True True True"


def test_an_explicit_online_setting_is_respected(monkeypatch):
    from course_lib.profiles import go_offline

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    import huggingface_hub.constants as hub

    monkeypatch.setattr(hub, "HF_HUB_OFFLINE", False)
    assert go_offline() is False and hub.HF_HUB_OFFLINE is False
