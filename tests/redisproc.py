"""Debian's redis-server on a loopback port with a temporary directory, for the cluster tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

from tests.conftest import free_port, require_program

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    """One redis-server process; stop() and start() again keep its port and its append-only file."""

    def __init__(self, workdir: Path) -> None:
        require_program(REDIS_SERVER,
                        "Debian package redis-server: the Redis journal tests run a real Redis")
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start and wait until it accepts connections."""
        self.starts += 1
        log = (self.dir / f"redis-{self.starts}.log").open("wb")
        # appendfsync always: a reply to a write means it is on disk, as the journal promises.
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or REDIS_SERVER, "--port", str(self.port),
             "--bind", "127.0.0.1", "--dir", str(self.dir), "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--protected-mode", "yes",
             "--daemonize", "no"],
            stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"redis-server exited with {self.proc.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"redis-server not answering within {timeout}s")

    def stop(self) -> None:
        """SIGTERM: Redis writes its append-only file and exits."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
