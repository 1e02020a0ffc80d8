"""Guild from Python: the seed's API over Guild's NATS services.

The seed's code runs as it is written::

    from guild import get_spawner, get_bus, get_mission_manager
    from guild import AgentRole, MissionPhase

    spawner = get_spawner()        # connects from NATS_URL, NATS_CREDS, GUILD_HOME, ...
    business = spawner.spawn(role=AgentRole.BUSINESS, capabilities=["strategy"], token_budget=10000)
    mission = get_mission_manager().create_mission(
        name="CooCook MVP Phase 5", phase=MissionPhase.DEVELOPMENT,
        assigned_agent_id=business.id, token_budget=25000)
    print(spawner.get_stats())

The same client, asynchronously: :mod:`guild.aio`. Errors: :mod:`guild.errors`. The
wire types: :mod:`guild.models`.
"""

from __future__ import annotations

from typing import Any

from . import errors, models
from ._config import Settings
from ._sync import Agent, Bus, Guild, MissionManager, Spawner, Subscription, Work, close_default, default
from .errors import (
    BadRequest,
    BudgetExceeded,
    Conflict,
    ConnectionFailed,
    Forbidden,
    GuildError,
    Internal,
    InvalidArgument,
    NoCredentials,
    NotFound,
    PermissionDenied,
    RateLimited,
    SyncInEventLoop,
    TimedOut,
    Unavailable,
)
from .models import (
    AgentAuthority,
    AgentCapability,
    AgentProfile,
    AgentRole,
    AgentStatus,
    Message,
    MessagePriority,
    MessageType,
    Mission,
    MissionPhase,
    MissionStatus,
    Sent,
    capability,
    specialist,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentAuthority",
    "AgentCapability",
    "AgentProfile",
    "AgentRole",
    "AgentStatus",
    "BadRequest",
    "BudgetExceeded",
    "Bus",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "Guild",
    "GuildError",
    "Internal",
    "InvalidArgument",
    "Message",
    "MessagePriority",
    "MessageType",
    "Mission",
    "MissionManager",
    "MissionPhase",
    "MissionStatus",
    "NoCredentials",
    "NotFound",
    "PermissionDenied",
    "RateLimited",
    "Sent",
    "Settings",
    "Spawner",
    "Subscription",
    "SyncInEventLoop",
    "TimedOut",
    "Unavailable",
    "Work",
    "capability",
    "close",
    "connect",
    "default",
    "errors",
    "get_bus",
    "get_mission_manager",
    "get_spawner",
    "models",
    "specialist",
]


def connect(**overrides: Any) -> Guild:
    """A new synchronous client from the environment, ``overrides`` winning
    (``url=``, ``creds=``, ``home=``, ``as_agent=``, ``timeout=``)."""
    return Guild(**overrides)


def get_spawner() -> Spawner:
    """The seed's ``get_spawner()``: the process client's spawner."""
    return default().spawner


def get_bus() -> Bus:
    """The seed's ``get_bus()``: the process client's bus."""
    return default().bus


def get_mission_manager() -> MissionManager:
    """The seed's ``get_mission_manager()``: the process client's mission manager."""
    return default().missions


def close() -> None:
    """Closes the process client's connections."""
    close_default()
