"""What the seed's examples take for granted and do not show: the agents they name.

Shared by ``agent.py`` and ``orchestrator.py`` (each a runnable script; Python puts this
folder on the path when one of them runs).
"""

from __future__ import annotations

from guild import AgentRole, AgentStatus, NotFound, default


def ensure(agent_id: str, role: AgentRole, parent_id: str | None = None) -> None:
    """``agent_id``, spawned unless it is there, with credentials this process holds
    (re-issued by the operator when another process spawned it), heartbeating."""
    client = default()
    try:
        profile = client.spawner.get_agent(agent_id)
    except NotFound:
        client.spawner.spawn(role=role, id=agent_id, parent_id=parent_id, token_budget=100_000 if parent_id is None else 30_000)
    else:
        if profile.status in (AgentStatus.COMPLETED, AgentStatus.FAILED):
            raise SystemExit(
                f"{agent_id} has ended ({profile.status.value}) on this Guild and ids are never reused: "
                f"run against a fresh one (`guild dev --home /tmp/fresh-guild --port 4333`)"
            )
        if client.aio.credentials.find(agent_id) is None:
            client.spawner.issue_credentials(agent_id)
    client.agent(agent_id).start_heartbeats()
