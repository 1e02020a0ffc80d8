"""Who a call acts as: one connection per identity, credentials from spawn replies and
from the CLI's folder, refusals before sending and by the broker."""

from __future__ import annotations

from pathlib import Path

import pytest

import guild.aio
from guild import AgentRole, ConnectionFailed, NoCredentials, PermissionDenied
from guild.aio import AsyncGuild

from .conftest import Team, uid
from .stack import GuildDev


async def test_no_credentials_is_refused_before_anything_is_sent(g: AsyncGuild) -> None:
    stranger = uid("stranger")
    before = (await g.bus.get_message_stats()).total_messages
    with pytest.raises(NoCredentials) as e:
        await g.bus.request(from_agent=stranger, to_agent="anyone", subject="hello")
    assert e.value.field == "from_agent" and stranger in e.value.message and "Nothing was sent" in e.value.message
    with pytest.raises(NoCredentials) as c:
        await g.bus.consume(agent_id=stranger, timeout=0)
    assert c.value.field == "agent_id"
    assert (await g.bus.get_message_stats()).total_messages == before


async def test_acting_as_another_agent_is_refused_by_the_broker(team: Team) -> None:
    # The developer's own connection, naming the orchestrator in the subject.
    conn, _ = await team.g.connection_for(team.dev_id)
    with pytest.raises(PermissionDenied) as e:
        await conn.call("bus", "alert", team.lead_id, {"subject": "I am the lead"})
    assert e.value.code == "forbidden" and e.value.rule == "permissions_violation"
    assert e.value.subject == f"guild.bus.v1.alert.{team.lead_id}"
    # The connection is still good for its own calls.
    assert (await team.g.spawner.heartbeat(team.dev_id)).status.value in ("ACTIVE", "WORKING")


async def test_an_agent_process_connects_with_its_own_credentials(team: Team, dev: GuildDev, tmp_path: Path) -> None:
    creds = team.g.credentials.find(team.dev_id)
    assert creds is not None
    path = tmp_path / "dev.creds"
    path.write_text(creds)
    async with await guild.aio.connect(url=dev.url, creds=str(path), home=str(tmp_path)) as me:
        assert me.principal == team.dev_id
        sent = await me.bus.ask_question(subject="Which database?")
        assert sent.receipt.to == team.lead_id
        # As anyone else, it holds no credentials: refused before sending.
        with pytest.raises(NoCredentials):
            await me.bus.alert(from_agent=team.lead_id, subject="x")


async def test_credentials_the_cli_saved_are_found_in_the_home(dev: GuildDev) -> None:
    lead, worker = uid("cli-lead"), uid("cli-dev")
    dev.cli("spawn", lead, "--role", "orchestrator", "--budget", "5000")
    dev.cli("--as", lead, "spawn", worker, "--role", "developer", "--budget", "1000")
    assert (dev.home / "creds" / f"{worker}.creds").is_file()
    async with await guild.aio.connect(url=dev.url, home=str(dev.home)) as g:
        # This client never spawned them: it reads <home>/creds/<id>.creds.
        ack = await g.spawner.heartbeat(worker)
        assert ack.status.value == "ACTIVE"
        got = await g.bus.request(from_agent=lead, to_agent=worker, subject="from the CLI's credentials")
        assert got.delivered_to == [worker]
        # GUILD_AS picks the agent's credentials in the home, as `guild --as` does.
        async with await guild.aio.connect(url=dev.url, home=str(dev.home), as_agent=lead) as as_lead:
            assert as_lead.principal == lead
            assert (await as_lead.spawner.list_agents(parent_id=lead))[0].id == worker
        await g.spawner.terminate(lead, subtree=True)


async def test_spawned_credentials_can_be_saved_for_the_cli(dev: GuildDev, tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "creds").mkdir(parents=True)
    (home / "creds" / "operator.creds").write_text((dev.home / "creds" / "operator.creds").read_text())
    async with await guild.aio.connect(url=dev.url, home=str(home), save_credentials=True) as g:
        a = await g.spawner.spawn(AgentRole.SUPPORT, token_budget=10)
        saved = home / "creds" / f"{a.id}.creds"
        assert saved.is_file() and (saved.stat().st_mode & 0o777) == 0o600
        await g.spawner.terminate(a.id)


async def test_bad_credentials_fail_to_connect(dev: GuildDev, tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailed):
        await guild.aio.connect(url=dev.url, home=str(tmp_path / "empty"))  # anonymous: refused
    bogus = tmp_path / "none.creds"
    with pytest.raises(guild.InvalidArgument) as e:
        await guild.aio.connect(url=dev.url, creds=str(bogus))
    assert e.value.field == "NATS_CREDS"


def test_settings_from_the_environment(tmp_path: Path) -> None:
    s = guild.Settings.from_env({"NATS_URL": "nats://a:1, nats://b:2", "GUILD_HOME": str(tmp_path), "GUILD_AS": "lead"})
    assert s.servers == ["nats://a:1", "nats://b:2"] and s.creds_dir == tmp_path / "creds" and s.as_agent == "lead"
    with pytest.raises(guild.InvalidArgument) as e:
        guild.Settings.from_env({"NATS_CREDS": "x.creds", "GUILD_AS": "lead"})
    assert e.value.field == "GUILD_AS"
    with pytest.raises(guild.InvalidArgument) as p:
        guild.Settings.from_env({"NATS_PASSWORD": "secret"})
    assert p.value.field == "NATS_PASSWORD"
