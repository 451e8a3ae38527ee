"""The autograder's guard, loaded into the kernel that runs a submission (this folder is put on its PYTHONPATH).

1) Network: the test suite's guard (tests/netguard/sitecustomize.py, named by COURSE_NETGUARD_FILE) refuses and
   logs every look-up, connection and datagram to anything but loopback (COURSE_NETGUARD_LOG).
2) Files and processes: with COURSE_SANDBOX_DIR set, a Python audit hook refuses, with PermissionError, opening a
   file for writing, creating, deleting, renaming, linking or changing the mode or times of any path outside that
   folder (and /dev), starting programs (subprocess, os.system, exec, spawn, fork) and signalling other
   processes. Each refusal is logged to COURSE_SANDBOX_LOG, for the score table. Audit hooks cannot be removed.

This guards against careless and naive hostile code in pure Python. It is not a security boundary: code that
loads C (ctypes, a compiled extension) can get past it. Untrusted work needs a container as well (see
course_lib/autograde/README.md).
"""

import importlib.util
import os
import platform
import sys


def _load_netguard() -> None:
    path = os.environ.get("COURSE_NETGUARD_FILE")
    if path:
        spec = importlib.util.spec_from_file_location("course_netguard", path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))


def _install_file_guard(root: str, log: str | None) -> None:
    root = os.path.realpath(root)
    allowed_files = {os.path.realpath(p) for p in (log, os.environ.get("COURSE_NETGUARD_LOG")) if p}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    # event: the positions of its arguments that name a path it changes
    path_events = {"os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
                   "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "os.rename": (0, 1), "os.link": (1,),
                   "os.symlink": (1,), "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.move": (0, 1)}
    process_events = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork",
                      "os.forkpty", "pty.spawn", "os.startfile"}
    own_pid = os.getpid()
    busy = []  # set while the hook writes its own log, so that write is not checked again

    def inside(path) -> bool:
        if isinstance(path, int) or path is None:  # an open file descriptor: its path was checked when opened
            return True
        try:
            real = os.path.realpath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return real == root or real.startswith(root + os.sep) or real.startswith("/dev/") or real in allowed_files

    def refuse(what: str, target, rule: str = "a submission may change files only in its own folder") -> None:
        message = f"the autograder's sandbox refused {what} {target!r}: {rule}"
        if log and not busy:
            busy.append(True)
            try:
                with open(log, "a", encoding="utf-8") as out:
                    out.write(message + "\n")
            finally:
                busy.clear()
        raise PermissionError(message)

    def hook(event, args):
        if busy:
            return
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & write_flags)
            if writing and not inside(path):
                refuse("writing to", path)
        elif event in path_events:
            for target in (args[i] for i in path_events[event] if i < len(args)):
                if not inside(target):
                    refuse(f"{event} of", target)
        elif event in process_events:
            refuse("starting a process with", event, "a submission may not start programs")
        elif event in ("os.kill", "os.killpg") and args and args[0] != own_pid:
            refuse("signalling process", args[0], "a submission may signal only its own process")

    platform.processor()  # asked by ipykernel; Python finds it with `uname -p`, so ask (and cache it) first
    sys.addaudithook(hook)


_load_netguard()
if os.environ.get("COURSE_SANDBOX_DIR"):
    _install_file_guard(os.environ["COURSE_SANDBOX_DIR"], os.environ.get("COURSE_SANDBOX_LOG"))
