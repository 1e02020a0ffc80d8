"""The generated models match proto-schemas/, and the seed's shapes hold on them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from guild import models
from guild.errors import BudgetExceeded, GuildError, error_from_reply

PACKAGE = Path(__file__).resolve().parents[1]
SCHEMAS = PACKAGE.parent.parent / "proto-schemas"


def test_the_committed_models_are_not_stale() -> None:
    """Fails when proto-schemas/ changed without `python scripts/generate_models.py`."""
    out = subprocess.run(
        [sys.executable, str(PACKAGE / "scripts" / "generate_models.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_every_schema_has_a_model() -> None:
    for path in sorted(SCHEMAS.glob("*.json")):
        title = json.loads(path.read_text())["title"]
        assert hasattr(models.wire, title), f"{path.name}: no model {title}"


def test_the_contract_examples_parse() -> None:
    for path in sorted((SCHEMAS / "examples").glob("*.json")):
        data = json.loads(path.read_text())
        model = getattr(models.wire, path.stem)
        assert model.model_validate(data) is not None, path.name
    delivery = models.Delivery.model_validate(json.loads((SCHEMAS / "examples" / "Delivery.json").read_text()))
    assert delivery.message.message_type.value == "question" and delivery.message.sender == "dev-lead-1"


def test_a_decision_reads_as_the_seed_reads_it() -> None:
    msg = models.Message.model_validate(
        {"id": "d1", "type": "decision", "from": "orchestrator-1", "to": "dev-lead-1", "subject": "Decision",
         "payload": {"decision": "proceed", "reason": "budget allows"}, "priority": "HIGH", "created_at": 1}
    )
    assert msg.message_type.value == "decision" and msg.payload.get("choice") == "proceed"
    assert msg.payload["decision"] == "proceed"


def test_error_bodies_become_typed_errors() -> None:
    e = error_from_reply(
        "reserve_tokens", 402, "budget exceeded",
        {"error": {"code": "budget_exceeded", "rule": "budget_exceeded", "field": "amount", "message": "short"}},
    )
    assert isinstance(e, BudgetExceeded) and (e.code, e.rule, e.field, e.message) == (
        "budget_exceeded", "budget_exceeded", "amount", "short"
    )
    bare = error_from_reply("x", 503, "down", None)
    assert bare.code == "unavailable" and isinstance(bare, GuildError)
