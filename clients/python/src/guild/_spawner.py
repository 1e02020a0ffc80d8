"""The agent spawner (``guild-spawner``), asyncio."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _generated as wire
from ._client import checked, parse
from .errors import InvalidArgument
from .models import (
    AgentAuthority,
    AgentCapability,
    AgentProfile,
    AgentRole,
    AgentStatus,
    Authorization,
    BudgetOf,
    Changed,
    HeartbeatAck,
    MissionPhase,
    Reallocated,
    Recovered,
    Reserved,
    ScalingList,
    ScalingState,
    Spawned,
    SpawnerStats,
)

if TYPE_CHECKING:
    from ._client import AsyncGuild

Role = AgentRole | str
Capabilities = Sequence[AgentCapability | str | dict[str, Any]]
Phase = MissionPhase | str | int


def role_text(role: Role, field: str = "role") -> str:
    """The wire spelling of a role; ``AgentRole.SPECIALIST`` alone names no specialty."""
    text = role.value if isinstance(role, AgentRole) else str(role)
    if text == AgentRole.SPECIALIST.value:
        raise InvalidArgument(
            "a specialist needs its specialty: role=specialist('market-analyst') "
            "(the wire's 'specialist:market-analyst')",
            rule="specialty_missing",
            field=field,
        )
    return text.lower()


def capabilities_of(capabilities: Capabilities | None) -> list[Any] | None:
    """Capabilities as the wire takes them (a bare name is ``{"name": name}``)."""
    if capabilities is None:
        return None
    out: list[Any] = []
    for c in capabilities:
        out.append({"name": c} if isinstance(c, str) else c)
    return out


def new_id(prefix: str) -> str:
    """A fresh id: ``<prefix>-<12 hex>``, one subject token."""
    return f"{prefix}-{secrets.token_hex(6)}"


class AsyncSpawner:
    """Spawning, lifecycle, authority and token budgets (the seed's ``AgentSpawner``).

    Every method takes ``by=``: who calls (an agent id, ``operator``); by default the
    view's own identity (an agent handle's spawner acts as the agent) or the client's.
    """

    service = "spawner"

    def __init__(self, guild: AsyncGuild, acting_as: str | None = None) -> None:
        self._guild = guild
        self._as = acting_as

    async def _call(self, operation: str, body: dict[str, Any], by: str | None, field: str = "by") -> Any:
        return await self._guild.call(self.service, operation, body, by=by or self._as, field=field)

    async def spawn(
        self,
        role: Role,
        capabilities: Capabilities | None = None,
        parent_id: str | None = None,
        token_budget: int = 0,
        authority: AgentAuthority | dict[str, Any] | None = None,
        *,
        id: str | None = None,
        public_key: str | None = None,
        by: str | None = None,
    ) -> Spawned:
        """Spawns an agent (the seed's ``spawn``) and keeps the credentials minted for it,
        so later calls on its behalf go over its own connection.

        ``id`` is generated (``<role>-<hex>``) when absent. The spawn is made by ``by``;
        by default by ``parent_id`` when this client holds its credentials (the parent
        spawns its child), else by this client's identity. A root agent (no
        ``parent_id``) needs the operator.
        """
        wire_role = role_text(role)
        agent_id = id if id is not None else new_id(wire_role.replace("specialist:", "").replace(".", "-")[:40])
        caller = by or self._as
        if caller is None and parent_id is not None and parent_id != self._guild.principal:
            if self._guild.credentials.find(parent_id) is not None:
                caller = parent_id
        body = checked(
            wire.SpawnRequest,
            {
                "id": agent_id,
                "role": wire_role,
                "capabilities": capabilities_of(capabilities),
                "parent_id": parent_id,
                "token_budget": token_budget,
                "authority": authority,
                "public_key": public_key,
            },
        )
        spawned = parse(Spawned, await self._guild.call(self.service, "spawn", body, by=caller), "spawn")
        if spawned.credentials is not None and spawned.credentials.creds:
            self._guild.remember_credentials(spawned.id, spawned.credentials.creds)
        return spawned

    async def get_agent(self, agent_id: str, *, by: str | None = None) -> AgentProfile:
        """One agent's profile (operation ``get``)."""
        body = checked(wire.AgentRef, {"agent_id": agent_id})
        return parse(AgentProfile, await self._call("get", body, by), "get")

    async def list_agents(
        self,
        *,
        role: Role | None = None,
        status: AgentStatus | str | None = None,
        parent_id: str | None = None,
        capabilities: Sequence[str] | None = None,
        include_terminated: bool | None = None,
        by: str | None = None,
    ) -> list[AgentProfile]:
        """Agents matching a filter, live ones unless ``include_terminated`` (``list``)."""
        body = checked(
            wire.AgentQuery,
            {
                "role": role_text(role) if role is not None else None,
                "status": status,
                "parent_id": parent_id,
                "capabilities": list(capabilities) if capabilities is not None else None,
                "include_terminated": include_terminated,
            },
        )
        return parse(wire.AgentList, await self._call("list", body, by), "list").agents

    async def find_available_agents(
        self,
        role: Role | None = None,
        capabilities: Sequence[str] | None = None,
        *,
        parent_id: str | None = None,
        by: str | None = None,
    ) -> list[AgentProfile]:
        """Agents that may take work now: ACTIVE or IDLE and holding no task (the seed's
        ``find_available_agents``)."""
        body = checked(
            wire.AgentQuery,
            {
                "role": role_text(role) if role is not None else None,
                "capabilities": list(capabilities) if capabilities is not None else None,
                "parent_id": parent_id,
            },
        )
        reply = await self._call("find_available_agents", body, by)
        return parse(wire.AgentList, reply, "find_available_agents").agents

    async def allocate_task(
        self, agent_id: str, task_id: str, phase: Phase | None = None, *, by: str | None = None
    ) -> AgentProfile:
        """Gives an available agent a task; it becomes WORKING (the seed's ``allocate_task``)."""
        body = checked(wire.AllocateTask, {"agent_id": agent_id, "task_id": task_id, "phase": phase})
        return parse(AgentProfile, await self._call("allocate_task", body, by), "allocate_task")

    async def release_task(
        self,
        agent_id: str,
        task_id: str | None = None,
        reason: str | None = None,
        *,
        allocated_at: int | None = None,
        by: str | None = None,
    ) -> AgentProfile:
        """Takes a task back; WORKING becomes ACTIVE."""
        body = checked(
            wire.ReleaseTask,
            {"agent_id": agent_id, "task_id": task_id, "reason": reason, "allocated_at": allocated_at},
        )
        return parse(AgentProfile, await self._call("release_task", body, by), "release_task")

    async def set_status(
        self, agent_id: str, status: AgentStatus | str, reason: str | None = None, *, by: str | None = None
    ) -> AgentProfile:
        """Moves an agent to ACTIVE, IDLE or BLOCKED."""
        body = checked(wire.SetStatus, {"agent_id": agent_id, "status": status, "reason": reason})
        return parse(AgentProfile, await self._call("set_status", body, by), "set_status")

    async def pause(self, agent_id: str, reason: str, subtree: bool = False, *, by: str | None = None) -> Changed:
        """Pauses an agent (BLOCKED: it takes no new work), or its whole subtree."""
        body = checked(wire.Pause, {"agent_id": agent_id, "reason": reason, "subtree": subtree})
        return parse(Changed, await self._call("pause", body, by), "pause")

    async def resume(self, agent_id: str, subtree: bool = False, *, by: str | None = None) -> Changed:
        """Resumes a paused agent, or its whole subtree."""
        body = checked(wire.Resume, {"agent_id": agent_id, "subtree": subtree})
        return parse(Changed, await self._call("resume", body, by), "resume")

    async def terminate(
        self,
        agent_id: str,
        subtree: bool = False,
        *,
        failed: bool = False,
        reason: str | None = None,
        by: str | None = None,
    ) -> Changed:
        """Ends an agent (and with ``subtree`` its descendants); unused tokens go back up
        the lineage, its credentials are revoked and its connections here closed."""
        body = checked(
            wire.Terminate, {"agent_id": agent_id, "subtree": subtree, "failed": failed, "reason": reason}
        )
        changed = parse(Changed, await self._call("terminate", body, by), "terminate")
        for a in changed.agents:
            if a.status in (AgentStatus.COMPLETED, AgentStatus.FAILED):
                await self._guild.forget(a.id)
        return changed

    async def heartbeat(
        self, agent_id: str | None = None, context_window: dict[str, Any] | None = None
    ) -> HeartbeatAck:
        """A sign of life from ``agent_id`` (sent as that agent), with its context-window
        figures (``{"used_tokens": ..., "max_tokens": ...}``) when it has them."""
        body = checked(wire.Heartbeat, {"context_window": context_window})
        reply = await self._guild.call(self.service, "heartbeat", body, by=agent_id or self._as, field="agent_id")
        return parse(HeartbeatAck, reply, "heartbeat")

    async def authorize(
        self, agent_id: str, action: str, phase: Phase | None = None, *, by: str | None = None
    ) -> Authorization:
        """May ``agent_id`` take ``action`` (its forbidden actions, its phase scope)?"""
        body = checked(wire.Authorize, {"agent_id": agent_id, "action": action, "phase": phase})
        return parse(Authorization, await self._call("authorize", body, by), "authorize")

    async def reserve_tokens(
        self,
        agent_id: str,
        amount: int,
        reservation_id: str | None = None,
        mission_id: str | None = None,
        *,
        by: str | None = None,
    ) -> Reserved:
        """Sets ``amount`` tokens aside before work (as the agent by default);
        :class:`~guild.errors.BudgetExceeded` when its budget is short."""
        body = checked(
            wire.ReserveTokens,
            {
                "agent_id": agent_id,
                "amount": amount,
                "reservation_id": reservation_id or new_id("r"),
                "mission_id": mission_id,
            },
        )
        reply = await self._guild.call(self.service, "reserve_tokens", body, by=by or self._as or agent_id, field="agent_id")
        return parse(Reserved, reply, "reserve_tokens")

    async def commit_tokens(
        self,
        agent_id: str,
        reservation_id: str,
        used: int | None = None,
        *,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        by: str | None = None,
    ) -> BudgetOf:
        """Records what a unit of work used: ``used``, or ``input_tokens`` and
        ``output_tokens`` (OpenTelemetry's ``gen_ai.usage.*``), or all three."""
        if used is None and input_tokens is None and output_tokens is None:
            raise InvalidArgument(
                "give used, or input_tokens and output_tokens", rule="usage_missing", field="used"
            )
        body = checked(
            wire.CommitTokens,
            {
                "agent_id": agent_id,
                "reservation_id": reservation_id,
                "used": used,
                "input_tokens": input_tokens,
                "output_tokens": output_tokens,
            },
        )
        reply = await self._guild.call(self.service, "commit_tokens", body, by=by or self._as or agent_id, field="agent_id")
        return parse(BudgetOf, reply, "commit_tokens")

    async def release_tokens(self, agent_id: str, reservation_id: str, *, by: str | None = None) -> BudgetOf:
        """Drops a reservation unused."""
        body = checked(wire.ReleaseTokens, {"agent_id": agent_id, "reservation_id": reservation_id})
        reply = await self._guild.call(self.service, "release_tokens", body, by=by or self._as or agent_id, field="agent_id")
        return parse(BudgetOf, reply, "release_tokens")

    async def reallocate_budget(
        self, from_agent: str, to_agent: str, amount: int, *, by: str | None = None
    ) -> Reallocated:
        """Moves ``amount`` unused tokens between agents of one orchestrator's subtree."""
        body = checked(
            wire.ReallocateBudget,
            {"from": from_agent, "to": to_agent, "amount": amount},
            rename={"from": "from_agent", "to": "to_agent"},
        )
        return parse(Reallocated, await self._call("reallocate_budget", body, by), "reallocate_budget")

    async def issue_credentials(
        self, agent_id: str, public_key: str | None = None, *, by: str | None = None
    ) -> Spawned:
        """New credentials for ``agent_id`` (by its parent or the operator); its old
        ones stop working at once. This client keeps the new ones."""
        body = checked(wire.IssueCredentials, {"agent_id": agent_id, "public_key": public_key})
        spawned = parse(Spawned, await self._call("issue_credentials", body, by), "issue_credentials")
        if spawned.credentials is not None and spawned.credentials.creds:
            self._guild.remember_credentials(spawned.id, spawned.credentials.creds)
        return spawned

    async def set_scaling_policy(
        self,
        owner: str,
        role: Role,
        *,
        max_agents: int,
        agent_budget: int,
        min_agents: int = 0,
        ready_per_agent: int = 1,
        hysteresis: float = 0.5,
        cooldown_ms: int = 5_000,
        idle_ttl_ms: int = 30_000,
        phase: Phase | None = None,
        agent_prefix: str | None = None,
        by: str | None = None,
    ) -> ScalingState:
        """Sets (or replaces) how many agents of ``role`` the ``owner`` keeps by load:
        spawner-svc spawns a member under the owner (``agent_budget`` tokens from its
        budget, within its authority and caps) while more than ``ready_per_agent`` READY
        missions of the role wait per member, up to ``max_agents``, and terminates members
        idle for ``idle_ttl_ms`` once the load falls below the hysteresis band, down to
        ``min_agents``; never two changes within ``cooldown_ms``. The operator, or an
        orchestrator that is the owner or above it, may."""
        body = checked(
            wire.ScalingPolicy,
            {
                "owner": owner,
                "role": role_text(role),
                "phase": phase,
                "min_agents": min_agents,
                "max_agents": max_agents,
                "ready_per_agent": ready_per_agent,
                "hysteresis": hysteresis,
                "cooldown_ms": cooldown_ms,
                "agent_budget": agent_budget,
                "idle_ttl_ms": idle_ttl_ms,
                "agent_prefix": agent_prefix,
            },
        )
        return parse(ScalingState, await self._call("set_scaling_policy", body, by), "set_scaling_policy")

    async def remove_scaling_policy(self, owner: str, role: Role, *, by: str | None = None) -> None:
        """Drops ``owner``'s scaling policy for ``role``; its members stay until terminated."""
        body = checked(wire.ScalingRef, {"owner": owner, "role": role_text(role)})
        await self._call("remove_scaling_policy", body, by)

    async def list_scaling_policies(self, owner: str | None = None, *, by: str | None = None) -> ScalingList:
        """The scaling policies in force (``owner``'s only, when given), with their live members."""
        body = checked(wire.ScalingQuery, {"owner": owner})
        return parse(ScalingList, await self._call("list_scaling_policies", body, by), "list_scaling_policies")

    async def get_stats(self, *, by: str | None = None) -> SpawnerStats:
        """Agent counts, capacity, tokens, cost, context use, parallelization efficiency
        (the seed's ``get_stats``)."""
        return parse(SpawnerStats, await self._call("get_stats", {}, by), "get_stats")

    async def recover(self, accept_loss: bool = False, *, by: str | None = None) -> Recovered:
        """The operator accepts this service's lost state (``accept_loss=True``); without
        it, reports what is lost."""
        body = checked(wire.Recover, {"accept_loss": accept_loss})
        return parse(Recovered, await self._call("recover", body, by), "recover")
