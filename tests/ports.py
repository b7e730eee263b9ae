"""Ports for the multi-process tests that no other process on the machine can be handed meanwhile.

A port found by binding to port 0 (what ``socket.bind(("", 0))`` and Lightning's ``find_free_network_port``
do) lies in the kernel's *ephemeral* range, the range it also hands out as the local port of every outgoing
connection. Between finding such a port and rank 0's TCPStore binding it (seconds on a loaded machine:
the ranks start Python and import torch first), any process's ``connect()`` can take it, for example a gloo
connection of another test run on the same machine. Then rank 0 fails with "address already in use".

So pick a free port *below* the ephemeral range, which the kernel never hands out by itself; at random, so
that concurrent runs of this suite rarely choose the same one (and a test that still sees EADDRINUSE
retries once with a new port).

The variables that point the ranks at that port (and those a launcher leaves behind) are put back after each
test by :func:`restored_environ`.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

_FALLBACK_EPHEMERAL_START = 32768
#: The variables a launcher reads or leaves behind.
DIST_ENV = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK", "GROUP_RANK",
            "LOCAL_WORLD_SIZE", "PL_GLOBAL_SEED", "PL_TRAINER_GPUS")
ADDRESS_IN_USE = ("address already in use", "eaddrinuse", "errno 98")


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):  # not Linux: the IANA dynamic range starts at 49152
        return _FALLBACK_EPHEMERAL_START


def _is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def reserve_port(rng: random.Random | None = None) -> int:
    """A currently free TCP port outside the ephemeral range (or, failing that, one the kernel picks)."""
    rng = rng or random.SystemRandom()
    high = min(_ephemeral_start(), 65536) - 1
    low = max(1024, high - 12000)
    for _ in range(200):
        port = rng.randint(low, high)
        if _is_free(port):
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # pragma: no cover - a crowded machine
        sock.bind(("", 0))
        return sock.getsockname()[1]


def address_in_use(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in ADDRESS_IN_USE)


@contextlib.contextmanager
def restored_environ(keys: Iterable[str]) -> Iterator[None]:
    """Puts the environment variables ``keys`` back as they were (set or unset) when the block ends."""
    saved = {key: os.environ.get(key) for key in keys}
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _text(stream: Any) -> str:
    return stream.decode(errors="replace") if isinstance(stream, bytes) else (stream or "")


def run_distributed_script(script: Path, output: Path, *args: str, timeout: float = 420) -> None:
    """Runs ``script OUTPUT ARGS`` under its own launcher (Lightning's ``ddp`` and ``ModelParallelStrategy``
    re-execute ``sys.argv``, so they never start inside pytest) on a reserved port, retrying once with another
    port if the first was taken; fails with the exit code and the ends of both output streams."""
    for attempt in (1, 2):
        env = {k: v for k, v in os.environ.items() if k not in DIST_ENV}
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(reserve_port()), PYTHONWARNINGS="ignore")
        command = [sys.executable, str(script), str(output), *args]
        try:
            result = subprocess.run(command, cwd=output, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as error:
            pytest.fail(f"{' '.join(command[1:])} did not finish in {timeout:g} s (port {env['MASTER_PORT']}).\n"
                        f"--- stdout (end)\n{_text(error.stdout)[-3000:]}\n"
                        f"--- stderr (end)\n{_text(error.stderr)[-5000:]}")
        if result.returncode == 0:
            return
        if attempt == 1 and address_in_use(result.stderr):
            continue
        pytest.fail(f"{' '.join(command[1:])} exited with code {result.returncode} (port {env['MASTER_PORT']}, "
                    f"attempt {attempt}).\n--- stdout (end)\n{result.stdout[-3000:]}\n"
                    f"--- stderr (end)\n{result.stderr[-5000:]}")
