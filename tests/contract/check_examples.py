"""Checks proto-schemas/ from outside Rust: every golden example validates against its
generated JSON Schema, and the schema is not permissive (dropping any required property
of the example makes it invalid). Usage: check_examples.py <proto-schemas dir>."""

import json
import pathlib
import sys

import jsonschema


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    examples = sorted((root / "examples").glob("*.json"))
    if not examples:
        print("no examples found", file=sys.stderr)
        return 1
    checked = 0
    for path in examples:
        schema = json.loads((root / path.name).read_text())
        example = json.loads(path.read_text())
        validator = jsonschema.Draft202012Validator(schema)
        validator.validate(example)
        for field in schema.get("required", []):
            broken = {k: v for k, v in example.items() if k != field}
            if validator.is_valid(broken):
                print(f"{path.name}: still valid without required {field!r}", file=sys.stderr)
                return 1
            checked += 1
    print(f"{len(examples)} examples valid; {checked} required fields enforced")
    return 0


if __name__ == "__main__":
    sys.exit(main())
