"""Messages per second from the Python client, sequential and pipelined, beside nats-py's
raw request/reply measured in the same run against the same nats-server.

    just bench-python                        # release binaries; writes docs/bench/python.md
    python bench/bench.py --out FILE [--messages N] [--window W]

It starts `guild dev` (authentication on, the per-agent request quota off, as
guild-bench runs) in a temporary home and measures, each sequentially (one request at
a time: latency bound) and pipelined (``--window`` requests in flight):

- raw echo: nats-py request/reply to a responder that answers at once (the floor);
- raw bus.request: nats-py sending the bus's REQUEST JSON itself, as the agent;
- client bus.request: ``guild.aio`` (validation, typed reply, typed errors);
- client bus.request, synchronous: ``guild.Guild`` from a plain thread (sequential).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path

import nats
from nats.aio.client import RawCredentials
from nats.aio.msg import Msg

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import guild  # noqa: E402
import guild.aio  # noqa: E402
from guild import AgentRole  # noqa: E402
from tests.stack import GuildDev, binary, free_port, nats_server  # noqa: E402

Op = Callable[[int], Awaitable[object]]
ROUNDS = 3


async def sequential(op: Op, n: int) -> tuple[float, list[float]]:
    lat = []
    start = time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await op(i)
        lat.append(time.perf_counter() - t)
    return n / (time.perf_counter() - start), lat


async def pipelined(op: Op, n: int, window: int) -> float:
    sem = asyncio.Semaphore(window)

    async def one(i: int) -> None:
        async with sem:
            await op(i)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(n)))
    return n / (time.perf_counter() - start)


def pct(lat: list[float], q: float) -> float:
    s = sorted(lat)
    return s[min(len(s) - 1, max(0, int(round(q * len(s))) - 1))] * 1000


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ver = subprocess.run([nats_server(), "--version"], capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"- CPU: {cpu}, {os.cpu_count()} cores; load average {load:.2f} at the start\n"
        f"- {platform.system()} {platform.release()}; Python {platform.python_version()}; "
        f"nats-py {version('nats-py')}; pydantic {version('pydantic')}; guild-agents {guild.__version__}\n"
        f"- {ver}; services from {Path(binary('guild')).parent} (GUILD_BIN_DIR); loopback only"
    )


async def run(dev: GuildDev, n: int, window: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    keys = dev.home / "keys"
    g = await guild.aio.connect(url=dev.url, home=str(dev.home))
    lead = await g.spawner.spawn(AgentRole.ORCHESTRATOR, token_budget=1_000)
    worker = await g.spawner.spawn(AgentRole.DEVELOPER, parent_id=lead.id, token_budget=100)
    me = g.agent(lead.id)
    await me.start_heartbeats()  # a run outlasts the 30 s heartbeat window
    await g.agent(worker.id).start_heartbeats()

    # The raw floor on the same server: a responder and a requester on two of the
    # services' own credentials (they may use _INBOX.service.*; agents may not).
    responder = await nats.connect(dev.url, user_credentials=str(keys / "spawner-svc.creds"),
                                   inbox_prefix="_INBOX.service.spawner")
    requester = await nats.connect(dev.url, user_credentials=str(keys / "bus-svc.creds"),
                                   inbox_prefix="_INBOX.service.bus")

    async def echo(msg: Msg) -> None:
        await msg.respond(msg.data)

    await responder.subscribe("_INBOX.service.spawner.bench", cb=echo)
    await responder.flush()
    body = json.dumps({"to": worker.id, "subject": "bench", "payload": {"n": 0}}).encode()

    async def raw_echo(i: int) -> object:
        return await requester.request("_INBOX.service.spawner.bench", body, timeout=10)

    creds = g.credentials.find(lead.id)
    assert creds is not None
    agent_nc = await nats.connect(dev.url, user_credentials=RawCredentials(creds), inbox_prefix=f"_INBOX.agent.{lead.id}")
    subject = f"guild.bus.v1.request.{lead.id}"

    async def raw_bus(i: int) -> object:
        msg = await agent_nc.request(subject, body, timeout=10)
        if msg.headers and "Nats-Service-Error-Code" in msg.headers:
            raise RuntimeError(msg.data.decode())
        return json.loads(msg.data)

    async def client_bus(i: int) -> object:
        return await me.bus.request(to_agent=worker.id, subject="bench", payload={"n": i})

    async def drain() -> None:
        while await g.bus.consume(worker.id, 0) is not None:
            pass

    scenarios: list[tuple[str, Op]] = [
        ("raw echo (nats-py request/reply)", raw_echo),
        ("raw bus.request (nats-py, the bus's JSON)", raw_bus),
        ("client bus.request (guild.aio)", client_bus),
    ]
    # Interleaved rounds, the median kept: the machine may be shared.
    seqs: dict[str, list[float]] = {name: [] for name, _ in scenarios}
    pipes: dict[str, list[float]] = {name: [] for name, _ in scenarios}
    lats: dict[str, list[float]] = {name: [] for name, _ in scenarios}
    for _ in range(ROUNDS):
        for name, op in scenarios:
            await op(0)  # warm
            seq, lat = await sequential(op, n)
            seqs[name].append(seq)
            lats[name].extend(lat)
            pipes[name].append(await pipelined(op, n, window))
            if "bus" in name:
                await drain()
    for name, _ in scenarios:
        rows.append({"name": name, "seq": statistics.median(seqs[name]), "p50": pct(lats[name], 0.5),
                     "p99": pct(lats[name], 0.99), "pipe": statistics.median(pipes[name])})

    # The synchronous API, from a plain thread.
    sync = guild.Guild(url=dev.url, home=str(dev.home))
    sync_agent = sync.agent(lead.id)
    sync.aio.credentials.remember(lead.id, creds)

    def sync_seq() -> tuple[float, list[float]]:
        lat = []
        start = time.perf_counter()
        for i in range(n):
            t = time.perf_counter()
            sync_agent.bus.request(to_agent=worker.id, subject="bench", payload={"n": i})
            lat.append(time.perf_counter() - t)
        return n / (time.perf_counter() - start), lat

    runs = [await asyncio.to_thread(sync_seq) for _ in range(ROUNDS)]
    seq, lat = statistics.median(r[0] for r in runs), [x for r in runs for x in r[1]]
    await drain()
    rows.append({"name": "client bus.request (synchronous guild.Guild)", "seq": seq, "p50": pct(lat, 0.5),
                 "p99": pct(lat, 0.99), "pipe": None})
    await asyncio.to_thread(sync.close)
    await drain()
    await g.spawner.terminate(lead.id, subtree=True)
    for c in (responder, requester, agent_nc):
        await c.close()
    await g.close()
    return rows


def render(rows: list[dict[str, object]], n: int, window: int, command: str) -> str:
    floor = rows[0]
    out = [
        "# The Python client: messages per second\n",
        f"Generated by `clients/python/bench/bench.py` ({command}). One run: every row against the same "
        "nats-server and services (`guild dev`, authentication on, the per-agent request quota off), "
        f"{n} requests per row sequentially (one in flight: the latency bound) and {n} pipelined "
        f"({window} in flight), in {ROUNDS} interleaved rounds: the rates are the rounds' medians, the "
        "latencies percentiles over all rounds. A bus.request is a REQUEST message the bus validates, routes, journals in "
        "JetStream and puts in the addressee's inbox before it replies; the raw echo is nats-py's "
        "request/reply to a responder that answers at once: the floor. The ratios compare the client with "
        "raw bus.request, the same work done with nats-py alone.\n",
        "## Machine\n",
        machine() + "\n",
        "## Figures\n",
        "| scenario | sequential msg/s | p50 ms | p99 ms | pipelined msg/s | client ÷ raw bus.request (seq / pipe) |",
        "|---|---|---|---|---|---|",
    ]
    raw_bus = rows[1]
    for r in rows:
        ratio = "—"
        if str(r["name"]).startswith("client"):
            seq_ratio = float(r["seq"]) / float(raw_bus["seq"])  # type: ignore[arg-type]
            pipe_ratio = (
                f"{float(r['pipe']) / float(raw_bus['pipe']):.2f}" if r["pipe"] is not None else "—"  # type: ignore[arg-type]
            )
            ratio = f"{seq_ratio:.2f} / {pipe_ratio}"
        pipe = f"{float(r['pipe']):,.0f}" if r["pipe"] is not None else "—"  # type: ignore[arg-type]
        out.append(
            f"| {r['name']} | {float(r['seq']):,.0f} | {float(r['p50']):.2f} | {float(r['p99']):.2f} | {pipe} | {ratio} |"  # type: ignore[arg-type]
        )
    if "debug" in str(Path(binary("guild")).parent):
        out.append(
            "\nThe services were a debug build (unoptimized): the bus.request rows are slower than a release "
            "build's (`just bench-python` builds one); the client-to-raw ratios compare like with like. A load "
            "average above the core count means the machine was shared: read the ratios, not the absolute rates."
        )
    out.append(
        f"\nThe raw echo floor: {float(floor['seq']):,.0f} msg/s sequential, "  # type: ignore[arg-type]
        f"{float(floor['pipe']):,.0f} pipelined on this machine.\n"  # type: ignore[arg-type]
    )
    out.append(
        "## Reproduce\n\n```sh\njust bench-python          # builds the release binaries, then runs this\n"
        "GUILD_BIN_DIR=target/debug python clients/python/bench/bench.py --out /tmp/python.md  # any build\n```\n"
    )
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--window", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as home:
        dev = GuildDev(home=Path(home), port=free_port(), extra={"GUILD_MAX_REQUESTS_PER_SECOND": "0"}).start()
        try:
            rows = asyncio.run(run(dev, args.messages, args.window))
        finally:
            dev.stop()
    command = f"--messages {args.messages} --window {args.window}, services from GUILD_BIN_DIR={os.environ.get('GUILD_BIN_DIR', 'target/debug')}"
    text = render(rows, args.messages, args.window, command)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
