"""Real servers for the team-store tests: the machine's own when it answers, else throwaway ones started
from the installed binaries on a free loopback port (never a skip: CI runs these tests)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import redis

MACHINE_REDIS = "redis://127.0.0.1:6379/0"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5) as r:
            return bool(r.ping())
    except (redis.RedisError, OSError):
        return False


class ThrowawayRedis:
    """redis-server in a temp dir on a fixed port, without persistence; stop() and start() again keep the
    port, so a test can take Redis away and bring it back."""

    def __init__(self, port: int | None = None, password: str | None = None) -> None:
        self.port = port or free_port()
        self.password = password
        self.dir = Path(tempfile.mkdtemp(prefix="llm-redis-"))
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed: the Redis store tests need it"
        args = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        args += ["--dir", str(self.dir)] + (["--requirepass", self.password] if self.password else [])
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not answers(self.url):
            assert self.proc.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            os.kill(self.proc.pid, 15)
            self.proc.wait(10)
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def redis_server() -> tuple[str, ThrowawayRedis | None]:
    """The URL of a Redis to test against, and the throwaway server to close afterwards (if one)."""
    if answers(MACHINE_REDIS):
        return MACHINE_REDIS, None
    server = ThrowawayRedis().start()
    return server.url, server


def redis_for_tests() -> Iterator[str]:
    """A module fixture's body: the URL of a Redis, closed afterwards if it was a throwaway one."""
    url, throwaway = redis_server()
    yield url
    if throwaway is not None:
        throwaway.close()


def scratch_prefix(url: str, label: str) -> Iterator[str]:
    """A fixture's body: a key prefix of the test's own (`label-<random>`), its keys deleted afterwards."""
    name = f"{label}-{uuid.uuid4().hex[:12]}"
    yield name
    delete_prefix(url, name)


def delete_prefix(url: str, prefix: str) -> None:
    with redis.Redis.from_url(url) as r:
        keys = list(r.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            r.delete(*keys)


# -- PostgreSQL ------------------------------------------------------------------------------------------

MACHINE_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def pg_answers(url: str) -> bool:
    import asyncio

    import asyncpg

    async def ping() -> None:
        conn = await asyncpg.connect(url, timeout=2)
        await conn.close()

    try:
        asyncio.run(ping())
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
        return False
    return True


class ThrowawayPostgres:
    """A PostgreSQL cluster in a temp dir on a fixed loopback port, trust auth, run as user `postgres`
    when we are root (postgres refuses root). stop() and start() again keep the port and the data, so a
    test can take PostgreSQL away and bring it back. Stopped by the postmaster's PID."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="llm-postgres-"))
        self.data = self.dir / "data"
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_postgres:
            shutil.chown(self.dir, "postgres", "postgres")
        self._initialised = False

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> None:
        binaries = Path("/usr/local/bin")
        tool = str(binaries / args[0]) if (binaries / args[0]).exists() else shutil.which(args[0])
        assert tool, f"{args[0]} is not installed: the PostgreSQL store tests need it"
        subprocess.run([*self.as_postgres, tool, *args[1:]], check=True, capture_output=True, timeout=60)

    def start(self) -> ThrowawayPostgres:
        if not self._initialised:
            self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
            self._initialised = True
        opts = f"-p {self.port} -h 127.0.0.1 -k {self.dir} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-o", opts, "-l", str(self.dir / "log"), "-w", "start")
        deadline = time.monotonic() + 15
        while not pg_answers(self.url):
            assert time.monotonic() < deadline, "the throwaway PostgreSQL did not start"
            time.sleep(0.1)
        return self

    def stop(self) -> None:
        """Fast shutdown (SIGINT to the postmaster, by PID); waits until it is gone."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().split("\n", 1)[0])
        os.kill(pid, 2)
        deadline = time.monotonic() + 15
        while pid_file.exists():
            assert time.monotonic() < deadline, "the throwaway PostgreSQL did not stop"
            time.sleep(0.05)

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def postgres_server() -> tuple[str, ThrowawayPostgres | None]:
    """The URL of a PostgreSQL to test against, and the throwaway server to close afterwards (if one)."""
    if pg_answers(MACHINE_POSTGRES):
        return MACHINE_POSTGRES, None
    server = ThrowawayPostgres().start()
    return server.url, server
