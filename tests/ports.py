"""Loopback ports for the servers the tests start (Mosquitto, MPD)."""

from __future__ import annotations

import socket
from collections.abc import Callable

HOST = "127.0.0.1"
WELL_KNOWN = {1883, 6600, 8883}  # a broker or player the machine itself may run


def free_port() -> int:
    """A loopback port nobody listens on now (bind to port 0, read it, release it)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port not in WELL_KNOWN:  # never those, whatever the kernel hands out
            return port


def start_on_a_free_port(
    start: Callable[[], None], move: Callable[[int], None], may_move: bool, name: str
) -> None:
    """Call `start`; if the port it was given was taken meanwhile (another process bound it
    between `free_port()` and the server's bind), `move` to another one and try again."""
    for _ in range(5):
        try:
            start()
        except RuntimeError as exc:
            if not (may_move and "Address already in use" in str(exc)):
                raise
            move(free_port())
            continue
        return
    raise RuntimeError(f"{name} found no free port in 5 tries")
