"""The seed's "Usage in Code" and its complete workflow, run as programs against
`guild dev` with a fresh interpreter each, the way a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .stack import PATIENCE, GuildDev


def run(dev: GuildDev, script: Path, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=dev.env,
        cwd=dev.home, timeout=PATIENCE * 3, check=False,
    )
    assert out.returncode == 0, f"{script.name} exited {out.returncode}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out.stdout


def test_in_orchestrator_then_in_agent(dev: GuildDev, examples: Path) -> None:
    printed = run(dev, examples / "orchestrator.py")
    # The seed's three monitors, then the spawn and the mission.
    assert "total_agents=" in printed and "total_messages=" in printed and "tokens_used=" in printed
    assert "spawned business-" in printed and "(READY)" in printed
    answered = run(dev, examples / "agent.py")
    assert "decision: proceed -> writing the extra tests" in answered
    assert "decided by orchestrator-1" in answered


def test_the_complete_workflow_report(dev: GuildDev, examples: Path) -> None:
    report = json.loads(run(dev, examples / "workflow.py", "--json"))
    tag = report["run"]
    roles = {a["id"].removesuffix(f"-{tag}"): a for a in report["agents"]}
    assert set(roles) == {
        "orchestrator", "market-analyst", "architect", "security", "strategist", "dev-lead", "qa", "backend-dev",
        "frontend-dev",
    }
    assert roles["backend-dev"]["parent_id"] == f"dev-lead-{tag}" and roles["orchestrator"]["parent_id"] is None
    assert all(a["status"] == "COMPLETED" for a in roles.values())
    assert roles["market-analyst"]["role"] == "specialist:market-analyst"
    missions = report["missions"]
    assert [m["status"] for m in missions] == ["COMPLETED"] * 7
    assert [m["phase"] for m in missions] == [-1, -1, -1, 0, 5, 5, 6]
    release = missions[-1]
    assert release["agent"] == f"qa-{tag}" and release["quality"] >= 0.8  # handed off, past its gate
    assert all(0 < m["tokens_used"] <= m["token_budget"] for m in missions)
    by_type = report["messages"]["by_type"]
    assert by_type["alert"] == 1 and by_type["handoff"] == 1 and by_type["decision"] == 2 and by_type["question"] == 4
    assert report["messages"]["by_priority"]["HIGH"] >= 1
    kinds = [d["kind"] for d in report["decisions"]]
    assert kinds.count("decision") == 2 and kinds.count("decision_completed") == 2
    choices = {d["choice"] for d in report["decisions"]}
    assert choices == {"Use OAuth for Phase 1, add JWT in Phase 2", "Adding compatibility layer"}
    assert report["audit"]["ok"] and report["tokens_used"] == sum(a["used"] for a in report["agents"])
