"""Regenerates ``src/guild/_generated.py`` from the JSON Schemas in ``proto-schemas/``.

Every schema there is one wire type with the types it uses under ``$defs``; this script
folds them into one document (each type once: a type two schemas both define must be
defined the same in both), then runs datamodel-code-generator, pinned in
``requirements-dev.txt``, so the output is the same byte for byte on every run.

    python scripts/generate_models.py            # writes src/guild/_generated.py
    python scripts/generate_models.py --check    # fails when the committed file is stale
"""

from __future__ import annotations

import argparse
import difflib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PACKAGE = HERE.parent
SCHEMAS = PACKAGE.parent.parent / "proto-schemas"
OUTPUT = PACKAGE / "src" / "guild" / "_generated.py"
# The version the committed file was made with; another version may write other code.
GENERATOR_VERSION = "0.97.0"


def combined(schemas: Path) -> dict[str, Any]:
    """One schema whose ``$defs`` hold every wire type and every type they use."""
    defs: dict[str, Any] = {}

    def add(name: str, schema: Any, origin: str) -> None:
        known = defs.get(name)
        if known is not None and known != schema:
            raise SystemExit(f"{origin}: {name} differs from its definition elsewhere")
        defs[name] = schema

    files = sorted(schemas.glob("*.json"))
    if not files:
        raise SystemExit(f"no schemas in {schemas}: run from a checkout of the repository")
    for path in files:
        schema = json.loads(path.read_text(encoding="utf-8"))
        nested = schema.pop("$defs", {})
        schema.pop("$schema", None)
        title = schema.get("title", path.stem)
        for name, sub in sorted(nested.items()):
            add(name, sub, path.name)
        schema.pop("title", None)
        add(title, schema, path.name)
    # Ids, timestamps and other constrained scalars are written in place where they are
    # used, so a field is a plain `str` or `int` with its constraints rather than a
    # wrapper model (`receipt.delivered_to[0]` is a str).
    scalars = {
        name: d
        for name, d in defs.items()
        if isinstance(d, dict)
        and d.get("type") in ("string", "integer")
        and not ({"enum", "oneOf", "anyOf", "const"} & d.keys())
    }

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/") and ref[8:] in scalars:
                merged = {k: v for k, v in scalars[ref[8:]].items()}
                merged.update({k: inline(v) for k, v in node.items() if k != "$ref"})
                return merged
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    defs = {name: inline(d) for name, d in defs.items() if name not in scalars}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "GuildWire",
        "description": "Every type of Guild's wire contract (proto-schemas/).",
        "$defs": dict(sorted(defs.items())),
    }


def generate(target: Path) -> None:
    """Writes the models for every wire type to ``target``."""
    from importlib.metadata import version

    have = version("datamodel-code-generator")
    if have != GENERATOR_VERSION:
        raise SystemExit(
            f"datamodel-code-generator {have} is installed; the models are made with "
            f"{GENERATOR_VERSION}: pip install -r requirements-dev.txt"
        )
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "guild_wire.json"
        source.write_text(json.dumps(combined(SCHEMAS), indent=2, sort_keys=True), encoding="utf-8")
        subprocess.run(
            [
                sys.executable,
                "-m",
                "datamodel_code_generator",
                "--input",
                str(source),
                "--input-file-type",
                "jsonschema",
                "--output",
                str(target),
                "--output-model-type",
                "pydantic_v2.BaseModel",
                "--target-python-version",
                "3.10",
                "--disable-timestamp",
                "--use-schema-description",
                "--use-subclass-enum",
                "--extra-fields",
                "allow",
                "--formatters",
                "black",
                "isort",
                "--use-double-quotes",
                "--use-standard-collections",
                "--use-union-operator",
                "--collapse-root-models",
                "--enum-field-as-literal",
                "one",
                "--custom-file-header",
                '"""Guild\'s wire types, generated from proto-schemas/ by scripts/generate_models.py.\n\nDo not edit: run `python scripts/generate_models.py` after `just schemas`.\n"""',
            ],
            check=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed models are stale")
    args = parser.parse_args()
    if not args.check:
        generate(OUTPUT)
        print(f"wrote {OUTPUT}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "_generated.py"
        generate(fresh)
        want = fresh.read_text(encoding="utf-8")
    have = OUTPUT.read_text(encoding="utf-8") if OUTPUT.exists() else ""
    if want == have:
        print(f"{OUTPUT.name} is up to date")
        return 0
    sys.stdout.writelines(difflib.unified_diff(have.splitlines(True), want.splitlines(True), "committed", "fresh"))
    print(f"\n{OUTPUT} is stale: run `python scripts/generate_models.py`", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
