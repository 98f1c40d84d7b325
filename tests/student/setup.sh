#!/usr/bin/env bash
# Fetches, once, the wheelhouse tests/test_student_install.py installs from: every wheel a lab
# machine like this one needs (`edgekit wheelhouse DIR --platform this`: the lab extra, edgekit's
# dependencies, the build backend), as an instructor would for a classroom with weak internet.
# Cached in ${EDGEKIT_STUDENT_CACHE:-~/.cache/edgekit-student}/wheelhouse-KEY, KEY a hash of
# pyproject.toml, edgekit/cli/wheelhouse.py and this script (a change fetches a new one and removes
# the old). The test then installs from it with --no-index and no network, and runs every notebook.
# Usage (CI runs this from .ci/run):   bash tests/student/setup.sh
# Needs the package index; the test itself never downloads.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "student_setup: $*" >&2; exit 1; }

PY="${EDGEKIT_STUDENT_PYTHON:-python3}"
CACHE="${EDGEKIT_STUDENT_CACHE:-$HOME/.cache/edgekit-student}"
KEY="$(cat pyproject.toml edgekit/cli/wheelhouse.py tests/student/setup.sh | sha256sum | cut -c1-12)"
DIR="$CACHE/wheelhouse-$KEY"
if [ -f "$DIR/.complete" ]; then
  echo "student_setup: present: $DIR ($(cat "$DIR/.complete"))"
  exit 0
fi

echo "student_setup: fetching $DIR"
mkdir -p "$CACHE"
rm -rf "$DIR" "$DIR.tmp"
start=$(date +%s)
PYTHONPATH="$PWD" "$PY" -m edgekit wheelhouse "$DIR.tmp" --platform this \
  | { grep -v "^WARNING: Location" || true; }
[ "${PIPESTATUS[0]}" -eq 0 ] || die "edgekit wheelhouse failed"
n=$(find "$DIR.tmp" -name '*.whl' | wc -l)
mb=$(du -sm "$DIR.tmp" | cut -f1)
mv "$DIR.tmp" "$DIR"
echo "$n wheels, $mb MB, fetched in $(( $(date +%s) - start )) s" > "$DIR/.complete"
for old in "$CACHE"/wheelhouse-*; do
  [ "$old" = "$DIR" ] || rm -rf "$old"
done
echo "student_setup: ok: $(cat "$DIR/.complete")"
