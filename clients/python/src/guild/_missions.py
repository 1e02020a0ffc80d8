"""The mission manager (``guild-mission``), asyncio."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import _generated as wire
from ._client import checked, parse
from ._spawner import Phase, Role, new_id, role_text
from .errors import InvalidArgument
from .models import (
    Archived,
    Mission,
    MissionOutcome,
    MissionStatistics,
    MissionStatus,
    Outputs,
    ParallelGroups,
    PhaseStatus,
    Readiness,
    Recovered,
)

if TYPE_CHECKING:
    from ._client import AsyncGuild

Dependency = str | tuple[str, str] | dict[str, Any]


def _phase(p: Phase | None) -> str | int | None:
    if p is None:
        return None
    return p.value if isinstance(p, enum.Enum) else p


def _dependencies(deps: Sequence[Dependency] | None) -> list[dict[str, Any]] | None:
    if deps is None:
        return None
    out = []
    for d in deps:
        if isinstance(d, str):
            out.append({"mission_id": d, "severity": "hard"})
        elif isinstance(d, tuple):
            out.append({"mission_id": d[0], "severity": d[1]})
        else:
            out.append(d)
    return out


class AsyncMissionManager:
    """Missions with dependencies, readiness, parallel groups, retries and quality gates
    (the seed's mission manager). ``by=`` is who calls."""

    service = "mission"

    def __init__(self, guild: AsyncGuild, acting_as: str | None = None) -> None:
        self._guild = guild
        self._as = acting_as

    async def _call(self, operation: str, body: dict[str, Any], by: str | None) -> Any:
        return await self._guild.call(self.service, operation, body, by=by or self._as)

    async def create_mission(
        self,
        name: str,
        phase: Phase,
        assigned_agent_id: str | None = None,
        token_budget: int | None = None,
        priority: int | None = None,
        input_data: Any = None,
        *,
        id: str | None = None,
        depends_on: Sequence[Dependency] | None = None,
        max_retries: int | None = None,
        quality_gate: float | None = None,
        role: Role | None = None,
        by: str | None = None,
    ) -> Mission:
        """Creates a mission (the seed's ``create_mission``); ``id`` is generated
        (``M-<hex>``) when absent. ``depends_on`` takes mission ids, ``(id, "soft")``
        pairs or the wire's ``{"mission_id", "severity"}``. ``role`` is the role that
        runs it: :meth:`claim_next` hands it only to an agent of that role."""
        body = checked(
            wire.NewMission,
            {
                "id": id or new_id("M"),
                "name": name,
                "phase": _phase(phase),
                "assigned_agent_id": assigned_agent_id,
                "token_budget": token_budget,
                "priority": priority,
                "input_data": input_data,
                "depends_on": _dependencies(depends_on),
                "max_retries": max_retries,
                "quality_gate": quality_gate,
                "role": role_text(role) if role is not None else None,
            },
        )
        return parse(Mission, await self._call("create_mission", body, by), "create_mission")

    async def add_dependency(
        self,
        mission_id: str,
        depends_on: str,
        dependency_type: str = "blocks_on",
        severity: str = "hard",
        *,
        by: str | None = None,
    ) -> Mission:
        """``mission_id`` waits for ``depends_on`` (the seed's ``add_dependency``); a cycle
        is refused naming its path."""
        if dependency_type != "blocks_on":
            raise InvalidArgument(
                f"dependency_type {dependency_type!r}: Guild's one dependency type is 'blocks_on'",
                rule="invalid_dependency_type",
                field="dependency_type",
            )
        body = checked(
            wire.AddDependency,
            {"mission_id": mission_id, "depends_on": depends_on, "dependency_type": dependency_type,
             "severity": getattr(severity, "value", severity)},
        )
        return parse(Mission, await self._call("add_dependency", body, by), "add_dependency")

    async def remove_dependency(self, mission_id: str, depends_on: str, *, by: str | None = None) -> Mission:
        """Drops a dependency."""
        body = checked(wire.RemoveDependency, {"mission_id": mission_id, "depends_on": depends_on})
        return parse(Mission, await self._call("remove_dependency", body, by), "remove_dependency")

    async def check_ready(self, mission_id: str, *, by: str | None = None) -> Readiness:
        """Whether the mission is READY; the answer is true when it is (the seed's
        ``if manager.check_ready(id):``) and names what it still waits on."""
        body = checked(wire.MissionRef, {"mission_id": mission_id})
        return parse(Readiness, await self._call("check_ready", body, by), "check_ready")

    async def get_parallelizable_missions(self, limit: int | None = None, *, by: str | None = None) -> ParallelGroups:
        """Ordered groups of open missions that can run at the same time (the seed's
        ``get_parallelizable_missions``; ``.as_lists()`` gives its list of lists)."""
        body = checked(wire.GroupsQuery, {"limit": limit})
        return parse(ParallelGroups, await self._call("get_parallelizable_missions", body, by), "get_parallelizable_missions")

    async def assign_mission(self, mission_id: str, agent_id: str | None = None, *, by: str | None = None) -> Mission:
        """Starts a READY mission on ``agent_id`` (default: its ``assigned_agent_id``),
        after the spawner allocates the agent to it."""
        body = checked(wire.AssignMission, {"mission_id": mission_id, "agent_id": agent_id})
        return parse(Mission, await self._call("assign_mission", body, by), "assign_mission")

    async def reassign_mission(self, mission_id: str, from_agent: str, to_agent: str, *, by: str | None = None) -> Mission:
        """Moves an ACTIVE mission from one agent to another in one step."""
        body = checked(
            wire.ReassignMission,
            {"mission_id": mission_id, "from": from_agent, "to": to_agent},
            rename={"from": "from_agent", "to": "to_agent"},
        )
        return parse(Mission, await self._call("reassign_mission", body, by), "reassign_mission")

    async def claim_next(self, role: Role | None = None, *, by: str | None = None) -> Mission | None:
        """Starts the calling agent's next mission, the pull a worker makes (claim, work,
        complete, claim again): the READY mission of ``role`` meant for this agent or for
        nobody, highest priority first, then the oldest. ``role`` is the agent's own by
        default and may not be another (:class:`~guild.errors.BadRequest`, field
        ``role``). ``None`` when no such mission is left. Only an agent claims
        (:class:`~guild.errors.Forbidden`, rule ``agent_only``): call it with ``by=`` the
        agent, or on the agent's own client."""
        body = checked(wire.ClaimNext, {"role": role_text(role) if role is not None else None})
        return parse(wire.Claimed, await self._call("claim_next", body, by), "claim_next").mission

    async def mark_complete(
        self, mission_id: str, output_data: Any = None, quality_score: float | None = None, *, by: str | None = None
    ) -> MissionOutcome:
        """Completes an ACTIVE mission with its output and quality score (the seed's
        ``mark_complete``); below the mission's quality gate it counts as a failed
        attempt, and the outcome is true when it will retry."""
        body = checked(
            wire.MarkComplete, {"mission_id": mission_id, "output_data": output_data, "quality_score": quality_score}
        )
        return parse(MissionOutcome, await self._call("mark_complete", body, by), "mark_complete")

    async def mark_failed(
        self, mission_id: str, reason: str, retry: bool = True, *, by: str | None = None
    ) -> MissionOutcome:
        """Fails an attempt (the seed's ``mark_failed``): the outcome is true when the
        mission went back to READY for another attempt, false when it gave up."""
        body = checked(wire.MarkFailed, {"mission_id": mission_id, "reason": reason, "retry": retry})
        return parse(MissionOutcome, await self._call("mark_failed", body, by), "mark_failed")

    async def cancel_mission(self, mission_id: str, reason: str, *, by: str | None = None) -> Mission:
        """Cancels an open mission."""
        body = checked(wire.CancelMission, {"mission_id": mission_id, "reason": reason})
        return parse(Mission, await self._call("cancel_mission", body, by), "cancel_mission")

    async def archive_missions(
        self, mission_id: str | None = None, older_than_ms: int | None = None, *, by: str | None = None
    ) -> Archived:
        """Archives final missions (one, or those finished longer ago than
        ``older_than_ms``); they stay retrievable."""
        body = checked(wire.ArchiveMissions, {"mission_id": mission_id, "older_than_ms": older_than_ms})
        return parse(Archived, await self._call("archive_missions", body, by), "archive_missions")

    async def get_mission(self, mission_id: str, *, by: str | None = None) -> Mission:
        """One mission."""
        body = checked(wire.MissionRef, {"mission_id": mission_id})
        return parse(Mission, await self._call("get_mission", body, by), "get_mission")

    async def list_missions(
        self,
        *,
        status: MissionStatus | str | None = None,
        phase: Phase | None = None,
        agent_id: str | None = None,
        include_archived: bool | None = None,
        limit: int | None = None,
        by: str | None = None,
    ) -> list[Mission]:
        """Missions matching a filter."""
        body = checked(
            wire.MissionQuery,
            {"status": status, "phase": _phase(phase), "agent_id": agent_id,
             "include_archived": include_archived, "limit": limit},
        )
        return parse(wire.MissionList, await self._call("list_missions", body, by), "list_missions").missions

    async def get_outputs(
        self, mission_id: str | None = None, phase: Phase | None = None, *, by: str | None = None
    ) -> Outputs:
        """Outputs of a mission or of a whole phase (the seed's shared intelligence)."""
        body = checked(wire.OutputQuery, {"mission_id": mission_id, "phase": _phase(phase)})
        return parse(Outputs, await self._call("get_outputs", body, by), "get_outputs")

    async def phase_status(self, phase: Phase, *, by: str | None = None) -> PhaseStatus:
        """Whether a phase is complete (the seed's sync point)."""
        body = checked(wire.PhaseRef, {"phase": _phase(phase)})
        return parse(PhaseStatus, await self._call("phase_status", body, by), "phase_status")

    async def get_statistics(self, *, by: str | None = None) -> MissionStatistics:
        """Per-status counts, success rate, retries, quality, tokens, throughput (the
        seed's ``get_statistics``)."""
        return parse(MissionStatistics, await self._call("get_statistics", {}, by), "get_statistics")

    async def recover(self, accept_loss: bool = False, *, by: str | None = None) -> Recovered:
        """The operator accepts the mission manager's lost state (``accept_loss=True``)."""
        body = checked(wire.Recover, {"accept_loss": accept_loss})
        return parse(Recovered, await self._call("recover", body, by), "recover")
