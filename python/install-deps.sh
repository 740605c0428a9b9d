#!/usr/bin/env bash
# Installs what the Python reference module needs, Debian's python3-redis and
# python3-msgpack, with apt-get. Does nothing when python3 imports both already. Waits
# (bounded, see docker/build-image.sh --wait-for-apt) while another apt or dpkg holds the
# package lock, rather than failing at once. Without root (or sudo) it says so and exits
# non-zero; the Python tests then skip, or fail when CI is set.
set -u
cd "$(dirname "$0")/.."
# The interpreter the tests use (python/interpreter.sh): HASESSION_PYTHON, else the first
# of python3 on PATH and Debian's /usr/bin/python3 that imports both.
if py=$(bash python/interpreter.sh 2>/dev/null); then
  echo "python-deps: redis and msgpack are installed ($py)"
  exit 0
fi
sudo=
if [ "$(id -u)" != 0 ]; then
  if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    sudo="sudo -n"
  else
    echo "python-deps: python3-redis and python3-msgpack are missing, and installing them needs root (or sudo): apt-get install python3-redis python3-msgpack" >&2
    exit 1
  fi
fi
if ! command -v apt-get >/dev/null; then
  echo "python-deps: apt-get not found: install redis-py (4.3 or newer) and msgpack (1.0 or newer) for python3" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Another apt or dpkg (unattended-upgrades after boot) holds the lock: wait, bounded
# (HASESSION_APT_WAIT seconds, 600 by default); apt-get's own lock timeout covers a race.
bash docker/build-image.sh --wait-for-apt || exit 1
log=$(mktemp)
trap 'rm -f "$log"' EXIT
install() {
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    -o DPkg::Lock::Timeout=600 python3-redis python3-msgpack 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}
echo "python-deps: installing python3-redis and python3-msgpack (apt-get)"
if ! install; then
  # Only a missing or stale package list (a fresh image) is worth an update and a retry.
  if ! grep -qE 'Unable to locate package|has no installation candidate|Failed to fetch' "$log"; then
    echo "python-deps: apt-get install failed" >&2
    exit 1
  fi
  echo "python-deps: the package lists lack them; apt-get update, then again"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 update || exit 1
  install || exit 1
fi
py=$(bash python/interpreter.sh) || { echo "python-deps: installed, but no python3 imports redis and msgpack (a python3 on PATH other than Debian's? set HASESSION_PYTHON=/usr/bin/python3)" >&2; exit 1; }
"$py" -c 'import redis, msgpack; print("python-deps: redis", redis.__version__, "msgpack", ".".join(map(str, msgpack.version)))'
