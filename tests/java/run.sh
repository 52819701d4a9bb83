#!/usr/bin/env bash
# Runs one Java interop program: tests/java/run.sh <Class> args...
# e.g. tests/java/run.sh JavaPartitioner 6 key-0 key-1
# Builds first if needed (tests/java/build.sh). Client logs (WARN+) go to
# stderr; stdout carries only the program's output.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ $# -lt 1 ]]; then
    echo "usage: tests/java/run.sh <Class> args..." >&2
    exit 2
fi
"$ROOT/tests/java/build.sh" >&2
exec java -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$ROOT/tests/java/log4j2-client.properties" \
    -cp "$ROOT/.kafka/java-classes:$ROOT/.kafka/lib/*" "$@"
