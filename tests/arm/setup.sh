#!/usr/bin/env bash
# Installs and caches what tests/test_arm.py (the emulated aarch64 check) needs, idempotently:
#   - qemu-user-static and debootstrap, via apt (root or passwordless sudo);
#   - a Debian 12 arm64 rootfs with python3.11 (first-stage debootstrap + dpkg -x: no chroot,
#     no binfmt_misc, no mounts) and edgekit's dependencies as aarch64 wheels (host pip),
#     cached in ${EDGEKIT_ARM_CACHE:-~/.cache/edgekit-arm} under a hash of what goes in them.
# Usage (CI runs this from .ci/run):   source .venv/bin/activate && bash tests/arm/setup.sh
# Needs the network (Debian mirror, PyPI); the test itself never downloads.
# Exits non-zero with a message when something cannot be installed. Details: tests/arm/README.md
set -euo pipefail
cd "$(dirname "$0")/../.."

die() { echo "arm_setup: $*" >&2; exit 1; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null \
    || die "the emulated aarch64 check needs root (apt-get, debootstrap) and this user is not" \
           "root and has no passwordless sudo; run this script as root"
  SUDO=(sudo -n)
fi

if command -v qemu-aarch64-static >/dev/null 2>&1 && command -v debootstrap >/dev/null 2>&1; then
  echo "arm_setup: present: $(qemu-aarch64-static --version | head -n1)," \
       "debootstrap $(dpkg-query -W -f='${Version}' debootstrap 2>/dev/null || echo '?')"
else
  command -v apt-get >/dev/null 2>&1 \
    || die "qemu-aarch64-static or debootstrap is missing and apt-get is not available;" \
           "install qemu-user-static and debootstrap by hand"
  echo "arm_setup: installing qemu-user-static and debootstrap with apt-get (no Recommends)"
  export DEBIAN_FRONTEND=noninteractive
  "${SUDO[@]}" apt-get update -qq || die "apt-get update failed"
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends qemu-user-static debootstrap \
    || die "apt-get install qemu-user-static debootstrap failed"
  command -v qemu-aarch64-static >/dev/null 2>&1 || die "qemu-user-static installed but qemu-aarch64-static is missing"
fi

PY="${PYTHON:-python}"
command -v "$PY" >/dev/null 2>&1 || PY=python3
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "$PY is older than Python 3.11 (harness.py reads pyproject.toml with tomllib)"

EDGEKIT_ARM_SUDO="${SUDO[*]:-}" "$PY" tests/arm/harness.py build \
  || die "building the cached rootfs or aarch64 packages failed (see above)"
echo "arm_setup: ok"
