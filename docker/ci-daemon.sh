#!/usr/bin/env bash
# A Docker daemon and a base image for the container tests (tests/containers), on a machine like CI's: root
# (or passwordless sudo), Debian's apt, and perhaps no image registry. Idempotent: a daemon that answers and
# a base image that is here are kept, so a second run takes a second. It never fails the caller: what it
# could not do goes to one line on stderr and into $SURF_DOCKER_STATUS, which the tests quote when they skip.
#
#   SURF_DOCKER_BASE    the base image (default python:3.11-slim). When it is neither here nor pullable, a
#                       Debian bookworm with Python 3.11 is made instead (debootstrap | docker import):
#                       surf-dist-base:bookworm, which docker/build.py then uses
#   SURF_DOCKERD_ARGS   dockerd's arguments (default: no iptables, no default bridge, overlay2)
#   SURF_DEBIAN_MIRROR  debootstrap's mirror (default http://deb.debian.org/debian)
set -uo pipefail

status_file=${SURF_DOCKER_STATUS:-/tmp/surf-dist-docker.status}
log=${SURF_DOCKERD_LOG:-/var/tmp/surf-dist-dockerd.log}
dockerd_args=${SURF_DOCKERD_ARGS:---iptables=false --bridge=none --storage-driver=overlay2}
base=${SURF_DOCKER_BASE:-python:3.11-slim}
local_base=surf-dist-base:bookworm
mirror=${SURF_DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { echo "docker/ci-daemon.sh: $*" >&2; }
give_up() {
  say "$*; the container tests will be skipped"
  echo "$*" >"$status_file"
  exit 0
}
rm -f "$status_file"

as_root=""
if [ "$(id -u)" -ne 0 ]; then
  sudo -n true 2>/dev/null || give_up "not root and no passwordless sudo: cannot install or start dockerd"
  as_root="sudo -n"
fi
apt_install() {
  command -v apt-get >/dev/null 2>&1 || return 1
  export DEBIAN_FRONTEND=noninteractive
  $as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1 ||
    { $as_root apt-get update -qq >/dev/null 2>&1 &&
      $as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null 2>&1; }
}
answers() { timeout 20 docker info >/dev/null 2>&1; }

# 1. the daemon
if ! answers; then
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io || give_up "could not install docker.io with apt-get"
  fi
  if [ -S /var/run/docker.sock ] && $as_root timeout 20 docker info >/dev/null 2>&1; then
    give_up "a Docker daemon runs but this user may not use it (add the user to the docker group)"
  fi
  say "starting dockerd $dockerd_args (log: $log)"
  # shellcheck disable=SC2086  # the arguments are words
  $as_root sh -c "setsid nohup dockerd $dockerd_args >>'$log' 2>&1 </dev/null &"
  for _ in $(seq 60); do answers && break; sleep 0.5; done
  answers || give_up "dockerd did not start: $(tail -n 1 "$log" 2>/dev/null | cut -c1-300)"
fi

# 2. a base image: the public one when it is here or a registry answers, else a local Debian
if timeout 20 docker image inspect "$base" >/dev/null 2>&1; then
  say "daemon up; base image $base is here"
  exit 0
fi
if timeout 120 docker pull -q "$base" >/dev/null 2>&1; then
  say "daemon up; pulled base image $base"
  exit 0
fi
if timeout 20 docker image inspect "$local_base" >/dev/null 2>&1; then
  say "daemon up; no registry answers; base image $local_base is here"
  exit 0
fi
command -v debootstrap >/dev/null 2>&1 || apt_install debootstrap || give_up "could not install debootstrap"
rootfs=$(mktemp -d /var/tmp/surf-dist-rootfs.XXXXXX)
trap '$as_root rm -rf "$rootfs"' EXIT
say "no registry answers: making $local_base (debootstrap --variant=minbase bookworm, Python 3.11)"
$as_root debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
  >"$rootfs.log" 2>&1 || give_up "debootstrap failed: $(tail -n 1 "$rootfs.log" | cut -c1-300)"
rm -f "$rootfs.log"
$as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* \
  "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
$as_root tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' - "$local_base" >/dev/null ||
  give_up "docker import of the Debian root filesystem failed"
say "daemon up; made base image $local_base"
