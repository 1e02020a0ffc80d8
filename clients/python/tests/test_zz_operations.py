"""Every operation the services announce has a Python method, and a test that called
it. Runs last (pytest orders files by name): it reads what the session's tests called."""

from __future__ import annotations

import json

import nats
import pytest

import guild
from guild.aio import AsyncBus, AsyncMissionManager, AsyncSpawner

from .conftest import CALLED
from .stack import GuildDev

#: The Python method for each operation whose name is not the method's.
RENAMED = {("spawner", "get"): "get_agent", ("spawner", "list"): "list_agents"}
CLASSES = {
    "spawner": (AsyncSpawner, guild.Spawner),
    "bus": (AsyncBus, guild.Bus),
    "mission": (AsyncMissionManager, guild.MissionManager),
}


async def announced(dev: GuildDev) -> dict[str, list[str]]:
    nc = await nats.connect(
        dev.url, user_credentials=str(dev.home / "creds" / "operator.creds"), inbox_prefix="_INBOX.operator"
    )
    try:
        out = {}
        for token in CLASSES:
            info = json.loads((await nc.request(f"$SRV.INFO.guild-{token}", b"", timeout=5)).data)
            out[token] = sorted(e["name"] for e in info["endpoints"])
        return out
    finally:
        await nc.close()


async def test_every_operation_has_a_method_and_a_test(dev: GuildDev, request: pytest.FixtureRequest) -> None:
    ops = await announced(dev)
    assert sum(len(v) for v in ops.values()) >= 50, ops
    missing_method, never_called = [], []
    for token, names in ops.items():
        for name in names:
            method = RENAMED.get((token, name), name)
            for cls in CLASSES[token]:
                if not callable(getattr(cls, method, None)):
                    missing_method.append(f"{cls.__name__}.{method} ({token}.{name})")
            if (token, name) not in CALLED:
                never_called.append(f"{token}.{name}")
    assert not missing_method, f"operations without a Python method: {missing_method}"
    ran_alone = len(request.session.items) < 20
    assert not never_called, (
        f"operations no test called successfully: {never_called}"
        + (" (this test reads what the whole suite called: run all of tests/)" if ran_alone else "")
    )
