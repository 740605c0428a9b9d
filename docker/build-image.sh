#!/usr/bin/env bash
# Builds the hasession Redis image FROM scratch out of Debian's redis-tools package
# (redis-server, redis-sentinel and redis-check-rdb are one binary): the binary, redis-cli,
# the libraries they link and the dynamic loader. No registry is used at any step.
#
# Usage: docker/build-image.sh [--print-tag] [--if-missing]
#   --print-tag   print the image tag this host would build, and exit
#   --if-missing  do nothing when the image already exists
# Environment: REDIS_IMAGE names an image to use instead; nothing is built then.
set -euo pipefail

print_tag=0 if_missing=0
for a in "$@"; do
  case "$a" in
    --print-tag) print_tag=1 ;;
    --if-missing) if_missing=1 ;;
    *) echo "usage: $0 [--print-tag] [--if-missing]" >&2; exit 2 ;;
  esac
done

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

if ! command -v redis-check-rdb >/dev/null 2>&1; then
  command -v apt-get >/dev/null 2>&1 || { echo "build-image: needs Debian's redis-tools package and apt-get (or set REDIS_IMAGE)" >&2; exit 1; }
  if ! apt-cache show redis-tools >/dev/null 2>&1; then
    echo "build-image: apt-get update" >&2
    sudo_ apt-get update -qq
  fi
  echo "build-image: installing redis-tools" >&2
  sudo_ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends redis-tools >/dev/null
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
