#!/usr/bin/env bash
# Train on one machine with torchrun: NPROC ranks, each a worker hosting a contiguous (or min-cut) block of
# agents; rank 0 is the coordinator and writes the run directory.
#
#   launch/torchrun_single_node.sh --preset smoke --out runs/smoke-torch
#   NPROC=4 launch/torchrun_single_node.sh --out runs/default-4 --set topology.placement=mincut
#   NPROC=8 launch/torchrun_single_node.sh --out runs/gpu --set run.device=cuda   # nccl, one GPU a rank
#
# Every argument goes to `surf-dist train` (see `surf-dist train --help`); --workers is ignored here:
# the number of ranks is NPROC.
#
#   --standalone       rendezvous on localhost with a free port (no --rdzv-* or --master-* needed)
#   --nproc-per-node   ranks on this machine (NPROC, default 2). On CPU every rank is single-threaded
#                      by torchrun's OMP_NUM_THREADS=1 default; raise it with run.threads_per_worker.
#   --max-restarts     when a rank dies, stop the others and restart all of them this many times
#                      (MAX_RESTARTS, default 3); the ranks resume from the last committed checkpoint in
#                      --out, as `failures.kill` tests do.
#   TORCHRUN           the launcher command (default `torchrun`; e.g. "python -m torch.distributed.run").
set -euo pipefail
exec ${TORCHRUN:-torchrun} --standalone --nproc-per-node "${NPROC:-2}" --max-restarts "${MAX_RESTARTS:-3}" \
  -m surf_dist train --backend torch "$@"
