"""Block network access outside this machine in every Python process the tests start (notebook kernels too).

tests/conftest.py puts this folder on PYTHONPATH and names a log file in COURSE_NETGUARD_LOG. Any attempt to
resolve a name or address (getaddrinfo, gethostbyname, gethostbyname_ex, gethostbyaddr), connect to, or send a
datagram to (sendto, sendmsg) an address other than loopback (127.0.0.0/8, ::1, localhost) is written to that log
and refused, so that a library which catches the error and carries on still fails the test session.
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


def _is_ip(family) -> bool:
    return family in (socket.AF_INET, socket.AF_INET6)


def install() -> None:
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo
    real_sendto, real_sendmsg = socket.socket.sendto, getattr(socket.socket, "sendmsg", None)  # no sendmsg on Windows
    real_lookups = {name: getattr(socket, name) for name in ("gethostbyname", "gethostbyname_ex", "gethostbyaddr")}

    def connect(self, address):
        if _is_ip(self.family) and not _is_local(address[0]):
            _refuse("connect to", address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if _is_ip(self.family) and not _is_local(address[0]):
            _refuse("connect to", address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _refuse("look up", host)
        return real_getaddrinfo(host, *args, **kwargs)

    def sendto(self, data, *args):  # sendto(data, address) or sendto(data, flags, address)
        if _is_ip(self.family) and args and not _is_local(args[-1][0]):
            _refuse("send to", args[-1])
        return real_sendto(self, data, *args)

    def sendmsg(self, buffers, *args):  # sendmsg(buffers, ancdata, flags, address): the address is optional
        if _is_ip(self.family) and len(args) >= 3 and args[2] is not None and not _is_local(args[2][0]):
            _refuse("send to", args[2])
        return real_sendmsg(self, buffers, *args)

    def guarded_lookup(name):
        real = real_lookups[name]

        def lookup(host):
            if not _is_local(host):
                _refuse("look up", host)
            return real(host)

        lookup.__name__ = name
        return lookup

    socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo = connect, connect_ex, getaddrinfo
    socket.socket.sendto = sendto
    if real_sendmsg is not None:
        socket.socket.sendmsg = sendmsg
    for name in real_lookups:
        setattr(socket, name, guarded_lookup(name))


if _LOG:
    install()
