"""A real PostgreSQL for the tests: Debian's postgresql-15, in a temporary data directory,
on a free loopback port, started and stopped with pytest-postgresql's executor.

PostgreSQL refuses to run as root, and the tests may run as root (CI does): then every
pg_ctl call goes through a small wrapper that runs it as the unprivileged `postgres` user
(the package's; setpriv, from util-linux), and the directory is that user's. Each test
gets a schema of its own in one database (`schema_url`): tables named alike never meet,
and making one costs 5-20 ms where a database costs 130-180 ms.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

import psycopg
import pytest
from pytest_postgresql.executors.proc import PostgreSQLExecutor

from tests.support import free_port, wait_until

BINARIES = Path("/usr/lib/postgresql/15/bin")  # Debian's postgresql-15 (scripts/lib.sh)
DATABASE = "memory_proxy_tests"
UNPRIVILEGED_USER = "postgres"
# A test database need not survive a crash of the machine.
LOOPBACK = "-c listen_addresses=127.0.0.1"
FAST = f"-c fsync=off -c synchronous_commit=off -c full_page_writes=off {LOOPBACK}"
_schemas = itertools.count()


def pg_ctl() -> Path:
    found = BINARIES / "pg_ctl"
    if not found.exists():
        message = f"PostgreSQL 15 is not installed ({found}; scripts/test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


class PostgresServer:
    """A PostgreSQL server of its own, on a free loopback port; `stop`/`start` again keep
    its data (a restart under load), `close` removes everything. `options` are the
    server's settings (FAST: no durability; LOOPBACK alone: PostgreSQL's defaults)."""

    def __init__(self, options: str = FAST) -> None:
        executable = pg_ctl()
        self.directory = Path(tempfile.mkdtemp(prefix="memory-proxy-postgres-"))
        if os.geteuid() == 0:
            executable = self._unprivileged(executable)
        self.port = free_port()
        self._options = options
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"
        self._executor = PostgreSQLExecutor(
            executable=str(executable),
            host="127.0.0.1",
            port=self.port,
            datadir=str(self.directory / "data"),
            unixsocketdir=str(self.directory),
            logfile=str(self.directory / "postgresql.log"),
            startparams="-w",
            dbname=DATABASE,
            postgres_options=options,
        )
        try:
            self._executor.start()
            wait_until(self._accepts_connections, timeout=30)  # pg_ctl -w may return early
            with psycopg.connect(self.admin_url, autocommit=True) as db:
                db.execute(f"CREATE DATABASE {DATABASE}")
        except Exception as exc:  # no server left behind; the log says why
            log = Path(self._executor.logfile)
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no log)"
            self.close()
            raise RuntimeError(f"the tests' PostgreSQL did not start: {exc}\n{tail}") from exc

    def _accepts_connections(self) -> bool:
        """Not "the database system is starting up" any more."""
        try:
            psycopg.connect(self.admin_url, connect_timeout=2).close()
        except psycopg.OperationalError:
            return False
        return True

    @property
    def data_directory(self) -> str:
        return str(self._executor.datadir)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _unprivileged(self, executable: Path) -> Path:
        """A pg_ctl that runs as the `postgres` user, in a directory that user owns."""
        user = pwd.getpwnam(UNPRIVILEGED_USER)
        wrapper = self.directory / "pg_ctl"
        wrapper.write_text(
            "#!/bin/sh\n"
            f"exec setpriv --reuid={user.pw_uid} --regid={user.pw_gid} --init-groups "
            f'{executable} "$@"\n'
        )
        wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
        os.chown(self.directory, user.pw_uid, user.pw_gid)
        return wrapper

    def schema_url(self) -> str:
        """A new, empty schema of the test database: the URL's search path."""
        name = f"test_{os.getpid()}_{next(_schemas)}"
        with psycopg.connect(self.url, autocommit=True) as db:
            db.execute(f"CREATE SCHEMA {name}")
        return f"{self.url}?options=-csearch_path%3D{name}"

    def stop(self) -> None:
        """Stopped fast (`-m fast`: connections closed, as a restart does)."""
        subprocess.run(
            [self._executor.executable, "stop", "-D", self._executor.datadir, "-m", "fast"],
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        subprocess.run(
            [
                self._executor.executable,
                "start",
                "-w",
                "-D",
                self._executor.datadir,
                "-l",
                self._executor.logfile,
                "-o",
                f"-p {self.port} -k {self.directory} {self._options}",
            ],
            check=True,
            capture_output=True,
        )
        wait_until(self._accepts_connections, timeout=30)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._executor.stop()
        if (Path(self.data_directory) / "postmaster.pid").exists():  # a start that failed
            command = [self._executor.executable, "stop", "-D", self.data_directory]
            subprocess.run([*command, "-m", "immediate"], check=False, capture_output=True)
        shutil.rmtree(self.directory, ignore_errors=True)
