#!/usr/bin/env bash
# Prints the Python interpreter that runs the reference module and its tests: the one
# HASESSION_PYTHON names, else the first of python3 (on PATH) and /usr/bin/python3 (where
# Debian's python3-redis and python3-msgpack install) that imports redis and msgpack.
# Exits 1, printing nothing, when none does.
set -u
if [ -n "${HASESSION_PYTHON:-}" ]; then
  set -- "$HASESSION_PYTHON"
else
  set -- python3 /usr/bin/python3
fi
for py in "$@"; do
  if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import redis, msgpack' 2>/dev/null; then
    command -v "$py"
    exit 0
  fi
done
exit 1
