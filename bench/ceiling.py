"""What the baselines can reach at most: the centralised and the purely local softmax fits of each task.

For every task of a split, prints the held-out accuracy (all agents' held-out samples, each classified
by the model that is fitted) of

* ``pooled``: one softmax regression fitted on all agents' training samples together (L-BFGS, a small
  ridge). DGD, DSGD and DFedAvgM converge towards this consensus model, so it bounds them from above
  (up to the bias of a non-doubly-stochastic S);
* ``local``: every agent fitted on its own training samples only (no communication at all).

U-DGD is not bound by ``pooled``: its local update sees the agent's own labelled mini-batches and its
parameters carry what meta-training learnt over many tasks, so it can personalise each agent's model.

    python bench/ceiling.py [--preset fashion] [--split meta-val] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from surf_dist.config import load_config
from surf_dist.worker.problem import Problem


def fit(x_MP: torch.Tensor, y_M: torch.Tensor, num_classes: int, ridge: float) -> torch.Tensor:
    """(P + 1) × C softmax weights minimising mean cross-entropy + ridge · ‖w‖² (L-BFGS)."""
    w = torch.zeros(x_MP.shape[1] + 1, num_classes, dtype=x_MP.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x_MP @ w[:-1] + w[-1], y_M) + ridge * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach()


def accuracy(w: torch.Tensor, x_TP: torch.Tensor, y_T: torch.Tensor) -> float:
    return float(((x_TP @ w[:-1] + w[-1]).argmax(1) == y_T).float().mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="fashion")
    parser.add_argument("--split", default="meta-val", choices=("meta-val", "meta-test"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    cfg = load_config(args.preset, None, args.overrides)
    problem = Problem(cfg)
    num_tasks = cfg.data.num_meta_val if args.split == "meta-val" else cfg.data.num_meta_test
    pooled, local = [], []
    for t in range(num_tasks):
        task = problem.task(args.split, t, list(range(problem.num_agents)))
        x, y, hx, hy = task.train_x, task.train_y, task.heldout_x, task.heldout_y
        w = fit(x.reshape(-1, x.shape[2]), y.reshape(-1), task.num_classes, 1e-3)
        pooled.append(accuracy(w, hx.reshape(-1, hx.shape[2]), hy.reshape(-1)))
        fits = [fit(x[a], y[a], task.num_classes, 1e-2) for a in range(x.shape[0])]
        local.append(sum(accuracy(fits[a], hx[a], hy[a]) for a in range(x.shape[0])) / x.shape[0])
        print(f"task {t:>3}: pooled {pooled[-1]:.4f}  local {local[-1]:.4f}", flush=True)
    print(f"{args.split}, {num_tasks} tasks: pooled {sum(pooled) / num_tasks:.4f}, local {sum(local) / num_tasks:.4f}")


if __name__ == "__main__":
    main()
