#!/usr/bin/env bash
# Builds the hasession Redis image FROM scratch out of Debian's redis-tools package
# (redis-server, redis-sentinel and redis-check-rdb are one binary): the binary, redis-cli,
# the libraries they link and the dynamic loader. No registry is used at any step.
#
# Usage: docker/build-image.sh [--print-tag] [--if-missing] [--wait-for-apt]
#   --print-tag     print the image tag this host would build, and exit
#   --if-missing    do nothing when the image already exists
#   --wait-for-apt  only wait until no process holds apt's or dpkg's locks, and exit
# Environment:
#   REDIS_IMAGE          names an image to use instead; nothing is built then
#   HASESSION_APT_WAIT   how long to wait for another apt or dpkg (seconds, default 600):
#                        on Ubuntu, unattended-upgrades holds the lock for minutes after boot
#   HASESSION_APT_LOCKS  the lock files to wait for (default: apt's and dpkg's own)
set -euo pipefail

print_tag=0 if_missing=0 wait_only=0
for a in "$@"; do
  case "$a" in
    --print-tag) print_tag=1 ;;
    --if-missing) if_missing=1 ;;
    --wait-for-apt) wait_only=1 ;;
    *) echo "usage: $0 [--print-tag] [--if-missing] [--wait-for-apt]" >&2; exit 2 ;;
  esac
done

apt_locks=${HASESSION_APT_LOCKS:-/var/lib/dpkg/lock-frontend /var/lib/dpkg/lock /var/lib/apt/lists/lock /var/cache/apt/archives/lock}
apt_wait=${HASESSION_APT_WAIT:-600}
case "$apt_wait" in '' | *[!0-9]*) echo "build-image: HASESSION_APT_WAIT must be a number of seconds" >&2; exit 2 ;; esac
no_apt_hint="install Debian's redis-tools package yourself, or set REDIS_IMAGE to an image you already have that runs redis-server"

# lock_holders prints "PID (command)" for every other process that holds one of the lock
# files, whichever kind of lock it took (apt and dpkg take fcntl locks, flock(1) takes
# flock locks): /proc/locks lists both, by device and inode.
lock_holders() {
  local f ino
  for f in $apt_locks; do
    [ -e "$f" ] || continue
    ino=$(stat -c %i "$f" 2>/dev/null) || continue
    # "N: TYPE ADVISORY MODE PID MAJ:MIN:INODE START END"; a waiter's line has "->" first.
    awk -v ino="$ino" '$2 != "->" { n = split($6, a, ":"); if (a[n] == ino && $5 > 0) print $5 }' /proc/locks 2>/dev/null
  done | sort -un | while read -r pid; do
    [ "$pid" = "$$" ] && continue
    printf '%s (%s) ' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | cut -c1-60 | sed 's/ *$//')"
  done
}

# wait_for_apt waits, at most HASESSION_APT_WAIT seconds in all, until no other process
# holds apt's or dpkg's locks, saying what it waits for.
apt_waited_from=$SECONDS
wait_for_apt() {
  local holders waited said=-1
  while holders=$(lock_holders); [ -n "$holders" ]; do
    waited=$((SECONDS - apt_waited_from))
    if [ "$waited" -ge "$apt_wait" ]; then
      echo "build-image: apt/dpkg is still locked after ${apt_wait}s by ${holders% }" >&2
      echo "build-image: wait and run it again, raise HASESSION_APT_WAIT, or $no_apt_hint" >&2
      return 1
    fi
    if [ $((waited / 15)) -ne "$said" ]; then
      said=$((waited / 15))
      echo "build-image: waiting for the dpkg lock, held by ${holders% } (${waited}s of at most ${apt_wait}s)" >&2
    fi
    sleep 1
  done
}

if [ "$wait_only" = 1 ]; then
  wait_for_apt
  exit 0
fi

sudo_() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The Redis version the image carries is the one Debian ships to this host.
redis_version() {
  local v
  v=$(dpkg-query -W -f='${Version}' redis-tools 2>/dev/null || true)
  if [ -z "$v" ]; then
    v=$(apt-cache policy redis-tools 2>/dev/null | awk '/Candidate:/ {print $2}')
  fi
  v=${v#*:}     # epoch
  v=${v%%-*}    # Debian revision
  [ -n "$v" ] && [ "$v" != "(none)" ] || return 1
  echo "$v"
}

if [ -n "${REDIS_IMAGE:-}" ]; then
  [ "$print_tag" = 1 ] && { echo "$REDIS_IMAGE"; exit 0; }
  echo "REDIS_IMAGE=$REDIS_IMAGE is set: not building" >&2
  exit 0
fi

# apt_get runs apt-get once the locks are free; a process that takes a lock in between
# makes apt-get wait for it too (DPkg::Lock::Timeout), within the same bound.
apt_get() {
  local left
  wait_for_apt || return 1
  left=$((apt_wait - (SECONDS - apt_waited_from)))
  [ "$left" -gt 0 ] || left=1
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get -o "DPkg::Lock::Timeout=$left" "$@"
}

if ! command -v redis-check-rdb >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { echo "build-image: redis-server is not installed and this host has no apt-get: $no_apt_hint" >&2; exit 1; }
  if ! apt-cache show redis-tools >/dev/null 2>&1; then
    echo "build-image: apt-get update" >&2
    apt_get update -qq || { echo "build-image: apt-get update failed (output above): $no_apt_hint" >&2; exit 1; }
  fi
  echo "build-image: installing redis-tools" >&2
  apt_get install -y -qq --no-install-recommends redis-tools >/dev/null ||
    { echo "build-image: apt-get could not install redis-tools (output above): $no_apt_hint" >&2; exit 1; }
fi

version=$(redis_version) || { echo "build-image: cannot tell the Redis version" >&2; exit 1; }
tag="hasession/redis:${version}"
[ "$print_tag" = 1 ] && { echo "$tag"; exit 0; }

if [ "$if_missing" = 1 ] && docker image inspect "$tag" >/dev/null 2>&1; then
  echo "$tag"
  exit 0
fi

ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
root="$ctx/rootfs"
mkdir -p "$root/usr/bin" "$root/data" "$root/tmp" "$root/etc"

bin=$(command -v redis-check-rdb)
cli=$(command -v redis-cli || true)
# redis picks its mode from argv[0] and --sentinel: the one binary serves as both.
cp -L "$bin" "$root/usr/bin/redis-server"
ln -s redis-server "$root/usr/bin/redis-sentinel"
[ -n "$cli" ] && cp -L "$cli" "$root/usr/bin/redis-cli"

copy_libs() {
  ldd "$1" | awk '/=>/ {print $3} /^[[:space:]]*\// {print $1}' | while read -r lib; do
    [ -e "$lib" ] || continue
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
}
copy_libs "$bin"
[ -n "$cli" ] && copy_libs "$cli"
echo "redis:x:999:999::/data:/usr/bin/redis-server" > "$root/etc/passwd"
echo "redis:x:999:" > "$root/etc/group"
chmod 1777 "$root/tmp"
chmod 0777 "$root/data"

cat > "$ctx/Dockerfile" <<DOCKERFILE
FROM scratch
COPY rootfs/ /

WORKDIR /data
LABEL org.hasession.redis-version="${version}"
ENTRYPOINT ["/usr/bin/redis-server"]
DOCKERFILE

echo "build-image: building $tag" >&2
# The legacy builder needs no image of its own (BuildKit may want to pull a frontend);
# its deprecation notice is shown only if the build fails.
if ! DOCKER_BUILDKIT=0 docker build -q -t "$tag" "$ctx" >"$ctx/build.log" 2>&1; then
  cat "$ctx/build.log" >&2
  exit 1
fi
echo "$tag"
