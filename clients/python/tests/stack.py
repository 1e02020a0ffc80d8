"""Real Guilds for the tests: ``guild dev`` as a process, or the parts started one by one
(keys, nats-server, the three service binaries) when a test must restart nats-server.

The binaries come from ``GUILD_BIN_DIR`` (default ``<repo>/target/debug``: ``cargo build
--workspace --bins``); nats-server from ``NATS_SERVER_BIN``, ``<repo>/.tools/bin`` (``just
bootstrap``) or ``PATH``.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import nats

REPO = Path(__file__).resolve().parents[3]
PATIENCE = 60.0  # seconds any start may take on a loaded machine


def bin_dir() -> Path:
    return Path(os.environ.get("GUILD_BIN_DIR", REPO / "target" / "debug"))


def binary(name: str) -> str:
    path = bin_dir() / name
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: run `cargo build --workspace --bins` (or set GUILD_BIN_DIR)")
    return str(path)


def nats_server() -> str:
    env = os.environ.get("NATS_SERVER_BIN")
    if env:
        return env
    pinned = REPO / ".tools" / "bin" / "nats-server"
    if pinned.is_file():
        return str(pinned)
    found = shutil.which("nats-server")
    if not found:
        raise RuntimeError("no nats-server: run `just bootstrap` or set NATS_SERVER_BIN")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def services_answer(url: str, creds: Path, names: tuple[str, ...] = ("guild-spawner", "guild-bus", "guild-mission")) -> bool:
    """Whether the services answer ``$SRV.PING`` as the operator."""
    try:
        nc = await nats.connect(
            url, user_credentials=str(creds), inbox_prefix="_INBOX.operator", connect_timeout=2,
            max_reconnect_attempts=0, allow_reconnect=False,
        )
    except Exception:
        return False
    try:
        for name in names:
            try:
                msg = await nc.request(f"$SRV.PING.{name}", b"", timeout=2)
                json.loads(msg.data)
            except Exception:
                return False
        return True
    finally:
        await nc.close()


def wait_until_up(
    url: str, creds: Path, procs: list[subprocess.Popen[bytes]], log: Path,
    names: tuple[str, ...] = ("guild-spawner", "guild-bus", "guild-mission"),
) -> None:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args!r} exited {p.returncode}; see {log}")
        if creds.is_file() and asyncio.run(services_answer(url, creds, names)):
            return
        time.sleep(0.2)
    raise RuntimeError(f"Guild did not come up within {PATIENCE:g} s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


#: Room for every test's agents and budgets on one Guild.
ROOMY = {"GUILD_MAX_AGENTS": "1000", "GUILD_TOKEN_POOL": "1000000000"}


@dataclass
class GuildDev:
    """``guild dev`` in a temporary home, on a free port."""

    home: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None
    #: More environment for `guild dev` (GUILD_MAX_REQUESTS_PER_SECOND=0 for benchmarks).
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a client of this Guild runs with."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "GUILD_"))}
        env.update({"NATS_URL": self.url, "GUILD_HOME": str(self.home)})
        return env

    def start(self) -> GuildDev:
        log = self.home / "guild-dev.log"
        env = dict(self.env, NATS_SERVER_BIN=nats_server(), RUST_LOG="warn", **ROOMY, **self.extra)
        self.proc = subprocess.Popen(
            [binary("guild"), "--home", str(self.home), "dev", "--port", str(self.port), "--mode", "extreme"],
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            wait_until_up(self.url, self.home / "creds" / "operator.creds", [self.proc], log)
        except BaseException:
            self.stop()
            raise
        return self

    def cli(self, *args: str) -> str:
        """Runs the ``guild`` CLI against this Guild; its stdout."""
        out = subprocess.run(
            [binary("guild"), "--home", str(self.home), "--nats-url", self.url, *args],
            capture_output=True, env=self.env, check=False, timeout=PATIENCE,
        )
        if out.returncode != 0:
            raise RuntimeError(f"guild {' '.join(args)} exited {out.returncode}: {out.stderr.decode()}")
        return out.stdout.decode()

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@dataclass
class Parts:
    """Guild's parts as separate processes, so nats-server can be restarted under the
    services: keys from ``guild admin init``, nats-server with them, the three binaries."""

    home: Path
    port: int
    server: subprocess.Popen[bytes] | None = None
    services: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    def start(self) -> Parts:
        try:
            return self._start()
        except BaseException:
            self.stop()  # what did start does not outlive the failure
            raise

    def _start(self) -> Parts:
        keys = self.home / "keys"
        subprocess.run(
            [binary("guild"), "admin", "init", "--out", str(self.home), "--resolver-dir", str(self.home / "data" / "jwt")],
            check=True, capture_output=True, timeout=PATIENCE,
        )
        (keys / "server.conf").write_text(
            f'listen: 127.0.0.1:{self.port}\njetstream {{\n  store_dir: "{self.home / "data" / "jetstream"}"\n}}\n'
            f'include "nats-auth.conf"\n'
        )
        self.start_server()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("NATS_", "GUILD_"))}
        env.update(ROOMY, GUILD_MODE="extreme", RUST_LOG="warn")
        for name, extra in (
            ("spawner", ["--custodian", str(keys / "custodian.json"), "--system-creds", str(keys / "system.creds")]),
            ("bus", []),
            ("mission", []),
        ):
            log = self.home / f"{name}-svc.log"
            self.services.append(
                subprocess.Popen(
                    [binary(f"{name}-svc"), "--nats-url", self.url, "--creds", str(keys / f"{name}-svc.creds"), *extra],
                    stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
                )
            )
            # One at a time: services creating their streams at once in a fresh store
            # can race in nats-server's directory creation.
            wait_until_up(self.url, self.operator_creds, self.services, log, (f"guild-{name}",))
        return self

    @property
    def operator_creds(self) -> Path:
        return self.home / "creds" / "operator.creds"

    def start_server(self) -> None:
        log = self.home / "nats-server.log"
        self.server = subprocess.Popen(
            [nats_server(), "-c", str(self.home / "keys" / "server.conf")],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
        )

    def restart_server(self) -> None:
        """Stops nats-server and starts it again on the same port and store."""
        assert self.server is not None
        stop(self.server)
        self.start_server()

    def stop(self) -> None:
        for p in self.services:
            stop(p)
        if self.server is not None:
            stop(self.server)
