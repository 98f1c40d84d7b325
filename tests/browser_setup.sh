#!/usr/bin/env bash
# Installs what tests/test_browser.py needs, idempotently:
#   - Debian's chromium (/usr/bin/chromium), via apt, without Recommends;
#   - the Python playwright package into the *active* Python environment (its wheel bundles the
#     Node driver; no browser is downloaded: the test launches /usr/bin/chromium).
# Usage (CI runs this from .ci/run):   source .venv/bin/activate && bash tests/browser_setup.sh
# Exits non-zero with a message when something cannot be installed.
set -euo pipefail

die() { echo "browser_setup: $*" >&2; exit 1; }

CHROMIUM=/usr/bin/chromium
if [ -x "$CHROMIUM" ]; then
  echo "browser_setup: chromium present: $("$CHROMIUM" --version 2>/dev/null || echo "$CHROMIUM")"
else
  command -v apt-get >/dev/null 2>&1 \
    || die "$CHROMIUM is missing and apt-get is not available; install Chromium by hand"
  SUDO=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
      || die "$CHROMIUM is missing and this user cannot run apt-get (not root, no passwordless sudo);" \
             "run: sudo apt-get install -y --no-install-recommends chromium"
    SUDO=(sudo -n)
  fi
  echo "browser_setup: installing chromium with apt-get (no Recommends)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium || die "apt-get install chromium failed"
  [ -x "$CHROMIUM" ] || die "apt-get installed chromium but $CHROMIUM is still missing"
fi

PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ -z "${VIRTUAL_ENV:-}" ]; then
  echo "browser_setup: warning: no virtual environment is active; installing into $(command -v "$PY")" >&2
fi
if "$PY" -c "import playwright.sync_api" >/dev/null 2>&1; then
  echo "browser_setup: playwright present: $("$PY" -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p')"
else
  echo "browser_setup: installing playwright with pip into $("$PY" -c 'import sys; print(sys.prefix)')"
  "$PY" -m pip install --quiet playwright || die "pip install playwright failed"
  "$PY" -c "import playwright.sync_api" || die "playwright installed but cannot be imported"
fi
echo "browser_setup: ok"
