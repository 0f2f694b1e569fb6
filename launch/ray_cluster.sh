#!/usr/bin/env bash
# Train on a Ray cluster: the driver (this script's `train`) is the coordinator-side launcher; it starts
# WORKERS actors (one worker each, hosting a block of agents) that form one gloo process group (nccl with
# --set run.device=cuda) and exchange halo rows directly, never through the driver.
#
#   # 1. on the head node (HEAD below is its address, reachable from every node):
#   launch/ray_cluster.sh head                       # = ray start --head --port=6379
#   # 2. on every other node:
#   launch/ray_cluster.sh worker HEAD:6379           # = ray start --address=HEAD:6379
#   # 3. anywhere on the cluster (the head is fine):
#   WORKERS=8 RAY_HEAD=HEAD:6379 launch/ray_cluster.sh train --out /shared/runs/default-8
#   #    = surf-dist train --backend ray --workers 8 --ray-address HEAD:6379 --out /shared/runs/default-8
#   # 4. when done, on every node:
#   launch/ray_cluster.sh stop                       # = ray stop
#
# Every argument after `train` goes to `surf-dist train` (--preset, --set KEY=VALUE, ...).
# --out MUST be on a filesystem every node sees (NFS, a shared volume): actor 0 writes the checkpoints
# there and, after an actor dies, the fresh actors (possibly on other nodes) read the last one back.
# surf-dist must be installed on every node (pip install -e '.[ray]'), at the same version.
#
#   RAY_PORT        the head's GCS port (default 6379)
#   NUM_CPUS        CPUs a node offers to Ray (`ray start --num-cpus`; default: all of them)
#   NUM_GPUS        GPUs a node offers to Ray (`ray start --num-gpus`; default: all it finds)
#   RAY_HEAD        HEAD:PORT for `train` (default: $RAY_ADDRESS, else auto = the cluster on this node)
#   WORKERS         actors for `train` (default 2); each asks for run.ray_cpus_per_worker CPUs (1) and
#                   run.ray_gpus_per_worker GPUs (0): add e.g. --set run.ray_gpus_per_worker=1 with cuda
#   GLOO_SOCKET_IFNAME / NCCL_SOCKET_IFNAME   the network interface the process group uses (e.g. eth0)
#                   when nodes have several; the driver forwards them to the actors
#   RAY_AUTH_MODE=token and RAY_AUTH_TOKEN   Ray's token authentication: set both, with one token, for
#                   head, worker and train alike (launch/README-ray.md)
set -euo pipefail
cmd="${1:-}"
shift || true
port="${RAY_PORT:-6379}"
resources=()
[[ -n "${NUM_CPUS:-}" ]] && resources+=(--num-cpus "$NUM_CPUS")
[[ -n "${NUM_GPUS:-}" ]] && resources+=(--num-gpus "$NUM_GPUS")
case "$cmd" in
  head)   # the head node: GCS on $port; no dashboard needed by surf-dist
    exec ray start --head --port="$port" "${resources[@]}" "$@" ;;
  worker) # another node joins the head at HEAD:PORT
    : "${1:?usage: $0 worker HEAD:PORT}"
    addr="$1"; shift
    exec ray start --address="$addr" "${resources[@]}" "$@" ;;
  train)  # the driver: connects to the cluster and starts WORKERS actors
    exec surf-dist train --backend ray --workers "${WORKERS:-2}" \
      --ray-address "${RAY_HEAD:-${RAY_ADDRESS:-auto}}" "$@" ;;
  stop)
    exec ray stop "$@" ;;
  *)
    echo "usage: $0 head | worker HEAD:PORT | train [surf-dist train args] | stop   (see the comments in $0)" >&2
    exit 2 ;;
esac
