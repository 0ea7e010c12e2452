"""Loaded by a server under test (PYTHONPATH): records every attempt to reach a non-loopback address.

Each attempt (name lookup or connect) is appended to $LUCIDDX_NET_LOG and then refused, as an air-gapped
network would refuse it.
"""

import ipaddress
import os
import socket

_LOG = os.environ.get("LUCIDDX_NET_LOG")
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "", None}


def _is_local(host) -> bool:
    if host in _LOCAL_NAMES or host == socket.gethostname():
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback or str(host) in ("0.0.0.0", "::")
    except ValueError:
        return False


def _record(what: str, host) -> None:
    with open(_LOG, "a") as handle:
        handle.write(f"{what} {host}\n")


if _LOG:
    _getaddrinfo, _connect = socket.getaddrinfo, socket.socket.connect

    def getaddrinfo(host, *args, **kwargs):
        if not _is_local(host):
            _record("lookup", host)
            raise socket.gaierror(socket.EAI_NONAME, "air-gapped test: outbound lookups are refused")
        return _getaddrinfo(host, *args, **kwargs)

    def connect(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_local(host):
            _record("connect", host)
            raise OSError("air-gapped test: outbound connections are refused")
        return _connect(self, address)

    socket.getaddrinfo = getaddrinfo
    socket.socket.connect = connect
