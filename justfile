# Guild's tasks. `just` lists them; `just verify` is what CI runs.
set shell := ["bash", "-euo", "pipefail", "-c"]

# The pinned tools come first on PATH.
export PATH := justfile_directory() + "/.tools/bin:" + env_var("PATH")

# List the recipes.
default:
    @just --list

# Install the pinned nats-server, just, and the Python test packages into .tools/.
bootstrap:
    scripts/bootstrap

# Everything CI checks: formatting, lints (warnings denied), every test, the fuzz targets
# for 30 s each, the docs, the short fault suite; each stage says how long it took.
verify: bootstrap
    #!/usr/bin/env bash
    set -euo pipefail
    for stage in fmt-check lint test python fuzz doc chaos-ci; do
        start=$(date +%s)
        echo "verify: $stage" >&2
        "{{just_executable()}}" "$stage"
        echo "verify: $stage took $(( $(date +%s) - start )) s" >&2
    done

# Fail if any file is not formatted.
fmt-check:
    cargo fmt --all -- --check

# Clippy on every target, warnings denied.
lint:
    cargo clippy --workspace --all-targets --locked -- -D warnings

# Every test: unit, property, contract, component (real nats-server) and end-to-end.
# The binaries come first: end-to-end tests run them as processes.
test:
    cargo build --workspace --bins --locked
    if command -v cargo-nextest >/dev/null; then \
        cargo nextest run --workspace --locked --no-fail-fast; \
    else \
        cargo test --workspace --locked --no-fail-fast --tests --lib --bins; \
    fi
    cargo test --workspace --locked --doc

# The Python client (clients/python): a fresh virtual environment, `pip install` of the
# package and its pinned test tools, mypy --strict, then pytest against real Guilds (the
# binaries of target/debug, which `test` builds; GUILD_BIN_DIR overrides), and a wheel and
# an sdist built from it. Python >= 3.10 (PYTHON picks the interpreter).
python:
    #!/usr/bin/env bash
    set -euo pipefail
    venv=target/python-venv
    rm -rf "$venv" target/python-dist
    "${PYTHON:-python3}" -m venv "$venv"
    "$venv/bin/pip" install --quiet --upgrade pip
    "$venv/bin/pip" install --quiet ./clients/python -r clients/python/requirements-test.txt
    export GUILD_BIN_DIR="${GUILD_BIN_DIR:-$PWD/target/debug}"
    if [ ! -x "$GUILD_BIN_DIR/guild" ]; then
        echo "python: no $GUILD_BIN_DIR/guild: run \`cargo build --workspace --bins\` (just test does) or set GUILD_BIN_DIR" >&2
        exit 1
    fi
    cd clients/python
    "../../$venv/bin/mypy" --strict
    "../../$venv/bin/pytest" -q -p no:cacheprovider
    "../../$venv/bin/python" -m build --outdir ../../target/python-dist . >/dev/null
    ls ../../target/python-dist

# Messages per second from the Python client beside nats-py's raw request/reply (release
# binaries; a minute or two): writes docs/bench/python.md.
bench-python: bootstrap
    cargo build --release --locked -p guild-cli -p spawner-svc -p bus-svc -p mission-svc --bins
    "{{just_executable()}}" python-venv
    GUILD_BIN_DIR="$PWD/target/release" target/python-venv/bin/python clients/python/bench/bench.py --out docs/bench/python.md

# A virtual environment with the Python client (editable) and its test tools, for development.
python-venv:
    [ -x target/python-venv/bin/python ] || "${PYTHON:-python3}" -m venv target/python-venv
    target/python-venv/bin/pip install --quiet -e ./clients/python -r clients/python/requirements-test.txt

# Every fuzz target (docs/FUZZING.md) for `seconds` each (GUILD_FUZZ_SECONDS, 30 by
# default), ignored tests included: the domain's decisions, every request decoder, and
# every endpoint over the wire (at least GUILD_FUZZ_WIRE_INPUTS, 2,000, per service).
# Each prints its seed (GUILD_FUZZ_SEED replays a run) and what it counted.
fuzz seconds=env_var_or_default("GUILD_FUZZ_SECONDS", "30"):
    GUILD_FUZZ_SECONDS={{seconds}} cargo test -p guild-domain --test fuzz --locked -- --include-ignored --nocapture
    if command -v cargo-nextest >/dev/null; then \
        GUILD_FUZZ_SECONDS={{seconds}} cargo nextest run -p guild-tests --test fuzz --locked --run-ignored all --no-capture; \
    else \
        GUILD_FUZZ_SECONDS={{seconds}} cargo test -p guild-tests --test fuzz --locked -- --include-ignored --nocapture; \
    fi

# The long run: every fuzz target for ten minutes (not part of verify).
fuzz-long:
    "{{just_executable()}}" fuzz 600

# API docs, warnings denied.
doc:
    RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked

# Regenerate proto-schemas/ (JSON Schemas, examples, the subject catalogue) from the types.
schemas:
    GUILD_BLESS=1 cargo test -p guild-wire --test contract --locked

# Mutation testing of the domain (slow; not part of verify): needs `cargo install cargo-mutants`.
mutants:
    cargo mutants -p guild-domain --no-shuffle -j 2

# Not part of verify (the quick mode's test is): the release binaries against a real
# nats-server, beside raw NATS baselines measured in the same run; use a quiet machine.
# Every benchmark at full counts (20+ min): writes docs/BENCHMARKS.md and docs/bench/*.svg.
bench: bootstrap
    cargo build --release --workspace --bins --locked
    target/release/guild-bench

# Quick figures are noisy, so they go to target/bench-quick/ and never replace docs/.
# Every benchmark with small counts, in seconds: target/bench-quick/BENCHMARKS.md and plots.
bench-quick: bootstrap
    cargo build --release --workspace --bins --locked
    target/release/guild-bench --quick --out target/bench-quick/BENCHMARKS.md

# The fault suite (root and iproute2 for the cluster's network namespaces): every service
# instance, nats-server and agents killed and paused under a workload, then a 3-node
# cluster (leader killed, a node cut off and healed, a rolling restart), 10 min of faults
# each (about 25 min in all); writes docs/RELIABILITY.md. `--seed N` replays a schedule:
# `cargo run -p guild-chaos -- run --both --seed N`.
chaos: bootstrap
    cargo build --locked -p guild-chaos -p spawner-svc -p bus-svc -p mission-svc --bins
    cargo run --locked -q -p guild-chaos -- run --both --duration 600s --out docs/RELIABILITY.md

# The short fault suite CI runs (under 10 min on 2 cores): both modes, 90 s of faults
# each; its report goes to target/chaos-ci/ and never replaces docs/.
chaos-ci:
    cargo build --locked -p guild-chaos -p spawner-svc -p bus-svc -p mission-svc --bins
    cargo run --locked -q -p guild-chaos -- run --both --duration 90s --command-name "just chaos-ci" --out target/chaos-ci/RELIABILITY.md
