"""The seed's "Usage in Code: In Orchestrator", runnable against `guild dev`.

    guild dev &                                   # in the repository (or any Guild)
    python examples/orchestrator.py               # NATS_URL / GUILD_HOME as `guild dev` printed

The block marked SEED is the seed's code; the README of this package lists the lines that
changed and why. The set-up before it makes what the seed takes for granted: an
``orchestrator-1`` to subscribe as, and the ``orchestrator_decision_handler`` it names.
"""

from __future__ import annotations

import threading

from _setup import ensure

from guild import AgentRole, Message
from guild import get_bus as _get_bus

# -- set-up the seed takes for granted ------------------------------------------------

decided = threading.Event()


def orchestrator_decision_handler(msg: Message) -> None:
    """Decides every question that reaches orchestrator-1 (a real one would ask its LLM)."""
    _get_bus().record_decision(
        message_id=msg.id, approver_agent="orchestrator-1", choice="proceed", rationale="the budget allows it"
    )
    print(f"orchestrator-1 decided {msg.subject!r}: proceed")
    decided.set()


ensure("orchestrator-1", AgentRole.ORCHESTRATOR)

# -- SEED: "In Orchestrator" ----------------------------------------------------------
from guild import get_spawner, AgentRole, AgentCapability  # noqa: E402,F811
from guild import get_bus  # noqa: E402
from guild import get_mission_manager, MissionPhase  # noqa: E402

spawner = get_spawner()
bus = get_bus()
manager = get_mission_manager()

# Spawn initial agents
business = spawner.spawn(
    role=AgentRole.BUSINESS,
    capabilities=[AgentCapability(name="market-analysis"), AgentCapability(name="pricing")],
    token_budget=10000
)

# Create mission
mission = manager.create_mission(
    name="CooCook MVP Phase 5",
    phase=MissionPhase.DEVELOPMENT,
    assigned_agent_id=business.id,
    token_budget=25000
)

# Subscribe to questions
bus.subscribe("question", orchestrator_decision_handler, agent_id="orchestrator-1")

# Monitor
print(spawner.get_stats())
print(bus.get_message_stats())
print(manager.get_statistics())
# -- end of SEED ----------------------------------------------------------------------

if __name__ == "__main__":
    print(f"spawned {business.id} ({business.role}), mission {mission.id} ({mission.status.value})")
    # With --serve it keeps answering questions (the agent example asks one).
    import sys

    if "--serve" in sys.argv:
        print("answering questions for orchestrator-1; Ctrl-C stops")
        threading.Event().wait()
