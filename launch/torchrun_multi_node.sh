#!/usr/bin/env bash
# Train across NNODES machines with torchrun: run this same command on every machine; together they form
# one process group of NNODES × NPROC_PER_NODE ranks (gloo on CPU, nccl with --set run.device=cuda).
#
#   # on every node (node-a is reachable from all of them on port 29500):
#   NNODES=2 NPROC_PER_NODE=4 RDZV_ENDPOINT=node-a:29500 launch/torchrun_multi_node.sh \
#       --out /shared/runs/default-8 --set topology.placement=mincut
#
# Every argument goes to `surf-dist train`. --out must be on a filesystem every node sees: rank 0 writes
# the checkpoints and, after a restart, every rank reads the last one back.
#
#   --nnodes           machines taking part (NNODES, default 2); "MIN:MAX" makes the job elastic
#   --nproc-per-node   ranks per machine (NPROC_PER_NODE, default 1); with GPUs, one per GPU
#   --rdzv-backend     c10d: the rendezvous runs in a TCP store that the first node to arrive hosts at
#                      RDZV_ENDPOINT; node ranks are assigned by arrival, so no --node-rank is needed.
#                      (Static alternative: --node-rank R --master-addr HOST --master-port PORT, with
#                      R = 0..NNODES-1 given by hand; it does not survive the loss of node 0.)
#   --rdzv-endpoint    HOST:PORT of that store (RDZV_ENDPOINT, required)
#   --rdzv-id          a job id shared by all nodes of one run (RDZV_ID, default surf-dist)
#   --max-restarts     when any rank dies, every rank on every node is stopped and restarted this many
#                      times (MAX_RESTARTS, default 3); they resume from the last checkpoint in --out.
#   TORCHRUN           the launcher command (default `torchrun`).
set -euo pipefail
: "${RDZV_ENDPOINT:?set RDZV_ENDPOINT=HOST:PORT (a node every node can reach)}"
exec ${TORCHRUN:-torchrun} --nnodes "${NNODES:-2}" --nproc-per-node "${NPROC_PER_NODE:-1}" \
  --rdzv-backend c10d --rdzv-endpoint "$RDZV_ENDPOINT" --rdzv-id "${RDZV_ID:-surf-dist}" \
  --max-restarts "${MAX_RESTARTS:-3}" -m surf_dist train --backend torch "$@"
