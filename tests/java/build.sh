#!/usr/bin/env bash
# Compiles the Java interop programs in tests/java/ against the broker's jars
# (.kafka/lib, fetched by scripts/kafka) into .kafka/java-classes.
# Idempotent: recompiles only when a .java file is newer than the last build.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$ROOT/tests/java"
OUT="$ROOT/.kafka/java-classes"
STAMP="$OUT/.built"

"$ROOT/scripts/kafka" fetch

# Tests running in parallel may all call this: one compiles, the others
# wait and then find it done.
mkdir -p "$ROOT/.kafka"
exec 9>"$ROOT/.kafka/java-build.lock"
flock 9

missing_class() {
    local f
    for f in "$SRC"/*.java; do
        [[ -f "$OUT/$(basename "$f" .java).class" ]] || return 0
    done
    return 1
}
if [[ -f "$STAMP" ]] && ! missing_class &&
    [[ -z "$(find "$SRC" -name '*.java' -newer "$STAMP" -print -quit)" ]] &&
    [[ -z "$(find "$ROOT/.kafka/lib" -name '*.jar' -newer "$STAMP" -print -quit)" ]]; then
    exit 0
fi
command -v javac >/dev/null || { echo "build.sh: javac not found (needs a JDK 17+)" >&2; exit 1; }
rm -rf "$OUT"
mkdir -p "$OUT"
javac --release 17 -Xlint:all -Werror -encoding UTF-8 -d "$OUT" -cp "$ROOT/.kafka/lib/*" "$SRC"/*.java
touch "$STAMP"
echo "build.sh: compiled $(ls "$SRC"/*.java | wc -l) Java programs into .kafka/java-classes" >&2
