"""Block network access outside this machine in every Python process the tests start (notebook kernels too).

tests/conftest.py puts this folder on PYTHONPATH and names a log file in COURSE_NETGUARD_LOG. Any attempt to
resolve or connect to an address other than loopback is written to that log and refused, so that a library
which catches the error and carries on still fails the test session.
"""

import ipaddress
import os
import socket

_LOG = os.environ.get("COURSE_NETGUARD_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", ""}


def _is_local(host) -> bool:
    if host is None:
        return True
    host = host.decode() if isinstance(host, bytes) else str(host)
    if host in _LOCAL_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _refuse(what: str, target) -> None:
    message = f"network access blocked in the offline test run: {what} {target!r} (pid {os.getpid()})"
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(message + "\n")
    raise OSError(message)


def install() -> None:
    real_connect, real_connect_ex, real_getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse("connect to", address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(address[0]):
            _refuse("connect to", address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse("look up", host)
        return real_getaddrinfo(host, *args, **kwargs)

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo


if _LOG:
    install()
