#!/usr/bin/env bash
# Builds, once, the environment tests/test_py310.py runs in: what a Jetson on JetPack 6 has —
# Python 3.10 and onnxruntime 1.23.2 (the newest release with cp310 wheels) — with edgekit's
# dependencies (core, lab, dev) but not edgekit itself: the test puts the checkout on PYTHONPATH,
# so the code under test is always this checkout's.
# Cached in ${EDGEKIT_PY310_CACHE:-~/.cache/edgekit-py310}/venv-KEY, KEY a hash of pyproject.toml
# and this script (a changed dependency builds a new one and removes the old).
# Usage (CI runs this from .ci/run):   bash tests/py310/setup.sh
# Needs the package index; the test itself never downloads. Exits non-zero with a message when
# Python 3.10 cannot be found or the install fails.
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "py310_setup: $*" >&2; exit 1; }

PY310="${EDGEKIT_PYTHON310:-}"
if [ -z "$PY310" ]; then
  for candidate in python3.10 "$HOME"/.pyenv/versions/3.10*/bin/python3.10 /usr/bin/python3.10; do
    if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null; then
      PY310="$(command -v "$candidate")"
      break
    fi
  done
fi
[ -n "$PY310" ] || die "no Python 3.10 found (tried python3.10, ~/.pyenv/versions/3.10*, /usr/bin/python3.10);" \
                       "install one (pyenv install 3.10) or set EDGEKIT_PYTHON310=/path/to/python3.10"

CACHE="${EDGEKIT_PY310_CACHE:-$HOME/.cache/edgekit-py310}"
KEY="$(cat pyproject.toml tests/py310/setup.sh | sha256sum | cut -c1-12)"
VENV="$CACHE/venv-$KEY"
if [ -x "$VENV/bin/python" ] && [ -f "$VENV/.complete" ]; then
  echo "py310_setup: present: $VENV ($("$VENV/bin/python" -c 'import onnxruntime, sys; print(sys.version.split()[0], "onnxruntime", onnxruntime.__version__)'))"
  exit 0
fi

pipq() {  # pip, without the "Location ... is ignored" lines a machine's find-links settings may add
  "$VENV/bin/python" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
  return "${PIPESTATUS[0]}"
}

echo "py310_setup: building $VENV with $PY310"
mkdir -p "$CACHE"
rm -rf "$VENV"
"$PY310" -m venv "$VENV" || die "$PY310 -m venv failed"
pipq install --quiet --upgrade pip || die "pip upgrade failed"
# edgekit's dependencies as pyproject.toml states them, then edgekit itself removed again.
pipq install --quiet ".[lab,dev]" "onnxruntime==1.23.2" || die "pip install failed"
pipq uninstall --quiet -y edgekit || die "pip uninstall edgekit failed"
"$VENV/bin/python" -c 'import onnxruntime, nbclient, tomli; assert onnxruntime.__version__ == "1.23.2"' \
  || die "the environment does not import (onnxruntime 1.23.2, nbclient, tomli)"
touch "$VENV/.complete"
for old in "$CACHE"/venv-*; do
  [ "$old" = "$VENV" ] || rm -rf "$old"
done
echo "py310_setup: ok"
