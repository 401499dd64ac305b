"""Checking that a port is free before anything is spawned, naming its owner if not."""

from __future__ import annotations

import errno
import socket

import psutil


class PortInUse(Exception):
    pass


def ensure_port_free(host: str, port: int, purpose: str, flag: str) -> None:
    """Raises PortInUse naming the port, its owner and `flag`, the option that changes it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise PortInUse(f"cannot listen on {host}:{port} for {purpose}: {exc}") from None
            owner = port_owner(port)
            raise PortInUse(
                f"port {port} ({purpose}) is already in use"
                + (f" by {owner}" if owner else "")
                + f": stop it, or choose another port with {flag}"
            ) from None


def port_owner(port: int) -> str | None:
    """'pid 123 (name)' of the process listening on `port`, when it can be found."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.AccessDenied, OSError):
        return None
    for conn in connections:
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            if conn.pid is None:
                return None
            try:
                name = psutil.Process(conn.pid).name()
            except psutil.Error:
                name = "?"
            return f"pid {conn.pid} ({name})"
    return None
