"""The seed's names and Guild's wire types.

The enums and records an agent passes and gets back. The wire types themselves are
generated from ``proto-schemas/`` (``guild._generated``, pydantic v2 models); this module
re-exports them under the seed's names where the seed has one (``AgentCapability``,
``AgentAuthority``, ``MessagePriority``) and adds what the seed's code relies on:

- :class:`Message` has ``message_type`` (the seed's ``msg.message_type.value``) beside
  the wire's ``type``, and a DECISION's payload always carries both ``decision`` and
  ``choice`` (the seed reads ``msg.payload.get("choice")``);
- :class:`Readiness` is true when the mission is READY (``if manager.check_ready(id):``);
- :class:`MissionOutcome` is true when the mission will retry
  (``if manager.mark_failed(id, reason, retry=True):``);
- :class:`Sent`, what the bus's sends return, is the message id (a ``str``, as the seed's
  ``msg_id = bus.ask_question(...)``) and carries the bus's :class:`Receipt`.
"""

from __future__ import annotations

import enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from . import _generated as wire
from ._generated import (
    AgentCredentials,
    AgentProfile,
    AgentStatus,
    AuditKind,
    AuditRecord,
    AuditRecords,
    Authorization,
    Budget,
    BudgetOf,
    Changed,
    DecisionList,
    DecisionOutcome,
    HeartbeatAck,
    LoggedDecision,
    MarkdownExport,
    MessageStats,
    Mission,
    MissionStatistics,
    MissionStatus,
    Outputs,
    ParallelGroup,
    PhaseStatus,
    QuestionList,
    QuestionState,
    Reallocated,
    ScalingList,
    ScalingState,
    Receipt,
    Recovered,
    Reserved,
    Severity,
    Spawned,
    SpawnerStats,
    VerifyReport,
    Archived,
)
from ._generated import Authority as AgentAuthority
from ._generated import Capability as AgentCapability
from ._generated import MessageType
from ._generated import Priority as MessagePriority

__all__ = [
    "AgentAuthority",
    "AgentCapability",
    "AgentCredentials",
    "AgentProfile",
    "AgentRole",
    "AgentStatus",
    "Archived",
    "AuditKind",
    "AuditRecord",
    "AuditRecords",
    "Authorization",
    "Budget",
    "BudgetOf",
    "Changed",
    "DecisionList",
    "DecisionOutcome",
    "Delivery",
    "HeartbeatAck",
    "LoggedDecision",
    "MarkdownExport",
    "Message",
    "MessagePriority",
    "MessageStats",
    "MessageType",
    "Mission",
    "MissionOutcome",
    "MissionPhase",
    "MissionStatistics",
    "MissionStatus",
    "Outputs",
    "ParallelGroup",
    "ParallelGroups",
    "PhaseStatus",
    "QuestionList",
    "QuestionState",
    "Readiness",
    "Reallocated",
    "ScalingList",
    "ScalingState",
    "Receipt",
    "Recovered",
    "Reserved",
    "Sent",
    "Severity",
    "Spawned",
    "SpawnerStats",
    "VerifyReport",
    "capability",
    "specialist",
    "wire",
]


class AgentRole(str, enum.Enum):
    """The seed's roles. ``SPECIALIST`` is the family of dynamic roles: spawn one with
    :func:`specialist` (``specialist("market-analyst")``), which names its specialty."""

    ORCHESTRATOR = "orchestrator"
    BUSINESS = "business"
    ARCHITECT = "architect"
    DEVELOPER = "developer"
    QA = "qa"
    DEVOPS = "devops"
    SECURITY = "security"
    SUPPORT = "support"
    SPECIALIST = "specialist"

    def __str__(self) -> str:
        return self.value


def specialist(specialty: str) -> str:
    """The role of a specialist in ``specialty`` (lowercase ``a-z 0-9 _ . -``), as the
    wire spells it: ``specialist:<specialty>``."""
    return f"specialist:{specialty}"


def capability(name: str, **params: Any) -> AgentCapability:
    """An :class:`AgentCapability` named ``name`` with optional parameters."""
    return AgentCapability(name=name, params=params or None)


class MissionPhase(str, enum.Enum):
    """The seed's phases, -1 to 7; the wire spells them as their numbers."""

    RESEARCH = "-1"
    PLANNING = "0"
    REQUIREMENTS = "1"
    ARCHITECTURE = "2"
    DESIGN = "3"
    FOUNDATION = "4"
    DEVELOPMENT = "5"
    TESTING = "6"
    DEPLOYMENT = "7"

    def __str__(self) -> str:
        return self.value


class Message(wire.Message):
    """A message on the bus (the envelope every delivery carries).

    ``message_type`` is the seed's name for the wire's ``type``; ``delivery`` is set when
    it came from ``consume(..., ack=False)``: pass it to ``ack`` or ``nak``.
    """

    model_config = ConfigDict(populate_by_name=True)

    delivery_id: str | None = Field(
        None, exclude=True, description="The delivery to ack or nak (consume with ack=False)."
    )
    attempt: int | None = Field(None, exclude=True, description="1 on first delivery, more on redelivery.")

    @property
    def message_type(self) -> MessageType:
        """The seed's ``msg.message_type`` (``.value`` is ``"decision"``, ...)."""
        return self.type

    @property
    def sender(self) -> str:
        """Who sent it (the wire's ``from``, ``from_`` in Python)."""
        return str(self.from_)

    def model_post_init(self, __context: Any) -> None:
        # The bus writes both names when record_decision decides; a reply with
        # is_decision carries what its sender wrote, "decision" or "choice". Either way
        # the seed's msg.payload.get("choice") and the demo's payload["decision"] work.
        if self.type == MessageType.decision and isinstance(self.payload, dict):
            for have, other in (("decision", "choice"), ("choice", "decision")):
                if isinstance(self.payload.get(have), str) and other not in self.payload:
                    self.payload[other] = self.payload[have]


class Delivery(BaseModel):
    """A message taken from an inbox, with what ``ack`` and ``nak`` take."""

    delivery_id: str
    attempt: int
    message: Message


class Readiness(wire.Readiness):
    """Whether a mission is READY; true when it is (the seed's ``check_ready``)."""

    def __bool__(self) -> bool:
        return self.ready


class MissionOutcome(wire.MissionOutcome):
    """A mission after ``mark_complete`` or ``mark_failed``; true when it went back to
    READY for another attempt (the seed's ``mark_failed(...) -> bool``)."""

    def __bool__(self) -> bool:
        return self.will_retry


class Sent(str):
    """The id of a message the bus accepted (a ``str``), with its :class:`Receipt`."""

    receipt: Receipt

    def __new__(cls, receipt: Receipt) -> Sent:
        value = super().__new__(cls, receipt.message_id)
        value.receipt = receipt
        return value

    @property
    def priority(self) -> MessagePriority:
        """The priority it was delivered at."""
        return self.receipt.priority

    @property
    def delivered_to(self) -> list[str]:
        """The inboxes it went to."""
        return list(self.receipt.delivered_to)


class ParallelGroups(wire.ParallelGroups):
    """Ordered groups of open missions that can run at the same time."""

    def as_lists(self) -> list[list[str]]:
        """The seed's shape: ``[[M-001, M-002], [M-003, M-004]]``."""
        return [list(g.missions) for g in self.groups]
