"""Loads a compose file the way `docker compose config` would need it checked, without Docker.

Usage: compose.py <compose.yaml> <compose-spec.json>
       compose.py --yaml <file.yaml>     (any YAML file as JSON, nothing checked)

Validates the YAML against the Compose Specification's JSON Schema (after checking that the
schema does reject a broken file, so a schema that loaded wrong cannot pass everything),
resolves `${VAR:-default}` interpolation as Compose would with none of the variables set,
and prints one JSON object on stdout: {"project": <the resolved file>, "variables": [names
the file lets a user set]}. Exit 1 with the reasons on stderr when the file is invalid.
"""

import json
import re
import sys

import jsonschema
import yaml

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?error}, ${NAME?error},
# ${NAME:+alt}, ${NAME+alt}, $NAME, and $$ (a literal $). Defaults are taken literally:
# this file nests no interpolation inside a default.
INTERPOLATION = re.compile(
    r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)"
)


def interpolate(value, variables, errors):
    """Resolves interpolation in every string of `value` with no variable set."""
    if isinstance(value, dict):
        return {k: interpolate(v, variables, errors) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, variables, errors) for v in value]
    if not isinstance(value, str):
        return value

    def resolve(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        variables.add(name)
        op, arg = m.group(2), m.group(3) or ""
        if op in ("-", ":-"):
            return arg
        if op in ("?", ":?"):
            errors.append(f"${{{name}}} is required: {arg}")
            return ""
        # ${NAME:+alt} and ${NAME}: nothing when unset.
        return ""

    return INTERPOLATION.sub(resolve, value)


def main():
    if sys.argv[1] == "--yaml":
        with open(sys.argv[2], encoding="utf-8") as f:
            json.dump(yaml.safe_load(f), sys.stdout)
        return 0
    compose_path, schema_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    # The schema says draft-07 by a URL jsonschema does not recognise (no trailing "#").
    jsonschema.Draft7Validator.check_schema(schema)
    validator = jsonschema.Draft7Validator(schema)

    broken = {"services": {"x": {"image": "x", "healthcheck": {"tset": ["CMD", "true"]}}}}
    if validator.is_valid(broken):
        print(f"{schema_path} accepts a misspelt healthcheck key: not the Compose schema?",
              file=sys.stderr)
        return 1

    with open(compose_path, encoding="utf-8") as f:
        # safe_load resolves anchors and `<<:` merge keys as Compose does.
        project = yaml.safe_load(f)
    errors = sorted(validator.iter_errors(project), key=lambda e: list(e.absolute_path))
    if errors:
        for e in errors:
            where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
            print(f"{compose_path}: {where}: {e.message}", file=sys.stderr)
        return 1

    variables = set()
    interpolation_errors = []
    resolved = interpolate(project, variables, interpolation_errors)
    if interpolation_errors:
        for e in interpolation_errors:
            print(f"{compose_path}: {e}", file=sys.stderr)
        return 1
    json.dump({"project": resolved, "variables": sorted(variables)}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
