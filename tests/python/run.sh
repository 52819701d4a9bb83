#!/usr/bin/env bash
# Runs one Python interop program with the venv's python (librdkafka through
# confluent-kafka): tests/python/run.sh <script.py> args...
# e.g. tests/python/run.sh rdkafka_consumer.py 127.0.0.1:9092 my-topic 10
# Creates the venv first if needed (scripts/python-env). librdkafka's logs
# and the program's diagnostics go to stderr; stdout carries only its output.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ $# -lt 1 ]]; then
    echo "usage: tests/python/run.sh <script.py> args..." >&2
    exit 2
fi
PYTHON="$("$ROOT/scripts/python-env")"
script="$1"
shift
[[ "$script" == */* ]] || script="$ROOT/tests/python/$script"
# No __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$PYTHON" "$script" "$@"
