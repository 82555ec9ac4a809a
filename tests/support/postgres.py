"""Private PostgreSQL clusters for tests: a primary and a streaming replica on free ports.

The clusters live in a temporary folder and are stopped and removed by the context manager.
Every statement is logged (log_statement=all), so a test can tell which server ran a query.
initdb refuses to run as root, so as root the server programs run as the `postgres` user.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psycopg

from tests.support.net import free_port
from tests.support.waiting import wait_until


def postgres_bindir() -> Path:
    """Where initdb, pg_ctl and pg_basebackup live: Debian's versioned folder, else PATH."""
    versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if versioned:
        return Path(versioned[-1]).parent
    initdb = shutil.which("initdb")
    if initdb is None:
        raise RuntimeError("PostgreSQL server programs not found: apt-get install postgresql")
    return Path(initdb).resolve().parent


@dataclass
class Cluster:
    name: str
    port: int
    data: Path
    log: Path

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection:
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        )

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open(encoding="utf-8", errors="replace") as log:
            log.seek(offset)
            return log.read()


class Clusters:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.bindir = postgres_bindir()
        self.as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.started: list[Cluster] = []

    def run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_postgres, str(self.bindir / program), *args],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.root,
        )

    def configure(self, cluster: Cluster) -> None:
        settings = {
            "port": cluster.port,
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.root}'",
            "wal_level": "replica",
            "max_wal_senders": 4,
            "hot_standby": "on",
            "max_connections": 40,
            "shared_buffers": "'16MB'",
            # Test data: durability is not worth the disk flushes.
            "fsync": "off",
            "full_page_writes": "off",
            "log_statement": "'all'",
            "log_line_prefix": "'%m [%p] %d '",
        }
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write("\n# Test cluster\n")
            conf.writelines(f"{key} = {value}\n" for key, value in settings.items())

    def start(self, cluster: Cluster) -> None:
        self.run("pg_ctl", "-D", str(cluster.data), "-l", str(cluster.log), "-w", "-t", "60", "start")
        self.started.append(cluster)

    def stop_all(self) -> None:
        for cluster in reversed(self.started):
            with suppress(subprocess.SubprocessError):
                self.run("pg_ctl", "-D", str(cluster.data), "-m", "immediate", "-w", "stop")

    def primary(self) -> Cluster:
        cluster = Cluster("primary", free_port(), self.root / "primary", self.root / "primary.log")
        self.run("initdb", "-D", str(cluster.data), "-U", "postgres", "-A", "trust", "--no-sync")
        self.configure(cluster)
        with (cluster.data / "pg_hba.conf").open("a") as hba:
            hba.write("host replication postgres 127.0.0.1/32 trust\n")
        self.start(cluster)
        return cluster

    def replica_of(self, primary: Cluster) -> Cluster:
        cluster = Cluster("replica", free_port(), self.root / "replica", self.root / "replica.log")
        # -R writes standby.signal and primary_conninfo: the copy starts as a streaming standby.
        self.run(
            "pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
            "-D", str(cluster.data), "-R", "-X", "stream", "-c", "fast", "--no-sync",
        )  # fmt: skip
        with (cluster.data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {cluster.port}\n")
        self.start(cluster)
        return cluster


@contextmanager
def primary_and_replica() -> Iterator[tuple[Cluster, Cluster]]:
    root = Path(tempfile.mkdtemp(prefix="pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    clusters = Clusters(root)
    try:
        primary = clusters.primary()
        replica = clusters.replica_of(primary)
        yield primary, replica
    finally:
        clusters.stop_all()
        shutil.rmtree(root, ignore_errors=True)


def wait_for_replay(primary: Cluster, replica: Cluster, timeout: float = 10.0) -> None:
    """Block until the replica has replayed everything the primary has written so far."""
    with primary.connect() as connection:
        target = connection.execute("SELECT pg_current_wal_lsn()").fetchone()[0]  # type: ignore[index]
    with replica.connect() as connection:

        def replayed() -> bool:
            row = connection.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target]).fetchone()
            return bool(row and row[0])

        wait_until(replayed, timeout, interval=0.05, what=f"the replica to replay up to {target}")


class Postgres:
    """A private PostgreSQL cluster (initdb) that a test may stop and start with pg_ctl."""

    def __init__(self, clusters: Clusters, cluster: Cluster) -> None:
        self.clusters = clusters
        self.cluster = cluster

    def url(self, database: str) -> str:
        return self.cluster.url(database)

    def stop(self) -> None:
        # -m fast: what a restart for an upgrade or a failover does; sessions are cut at once.
        self.clusters.run("pg_ctl", "-D", str(self.cluster.data), "-m", "fast", "-w", "-t", "60", "stop")

    def start(self) -> None:
        self.clusters.start(self.cluster)


@contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    root = Path(tempfile.mkdtemp(prefix="faults-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    clusters = Clusters(root)
    try:
        yield Postgres(clusters, clusters.primary())
    finally:
        with suppress(Exception):
            clusters.stop_all()
        shutil.rmtree(root, ignore_errors=True)
