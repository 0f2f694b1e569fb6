"""Figure 5 as a command (``surf-dist sweep-epsilon``): one trained run per descent margin ε.

The paper (docs/method.md, Fig. 5) trains a 5-layer U-DGD at Dirichlet α = 0.3 for each ε in
{0.001, 0.01, 0.05, 0.1, 0.5} and reports that ε changes how fast the layers descend, not the last
layer's accuracy, and that the largest ε violates its constraints most. Per ε this records the meta-test
accuracy per layer (mean and std over the tasks), the loss per layer, and the constraint violations: on
the meta-test tasks (``(task, layer)`` pairs whose slack is positive, out of tasks × L) and during
meta-training (``(step, layer)`` pairs, from ``metrics.jsonl``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .runs import ensure_run, train_violations

PAPER_EPSILONS = (0.001, 0.01, 0.05, 0.1, 0.5)


def run_name(epsilon: float) -> str:
    return f"eps-{epsilon:g}"


def sweep_epsilon(
    out: Path, preset: str, overrides: list[str], epsilons: tuple[float, ...] = PAPER_EPSILONS, *, progress: bool = True
) -> dict[str, Any]:
    """Train (or reuse) ``out/eps-<ε>`` for every ε; per-layer accuracy and violation counts per ε."""
    rows = []
    for epsilon in epsilons:
        run = out / run_name(epsilon)
        summary = ensure_run(run, preset, [*overrides, f"train.epsilon={epsilon}"], progress=progress)
        u = summary["eval"]["udgd"]
        num_layers = len(u["accuracy_per_layer"]) - 1
        rows.append(
            {
                "epsilon": epsilon,
                "run": str(run),
                "accuracy_per_layer": u["accuracy_per_layer"],
                "accuracy_std_per_layer": u["accuracy_std_per_layer"],
                "loss_per_layer": u["loss_per_layer"],
                "violations_per_layer": u["violations_per_layer"],
                "violations": sum(u["violations_per_layer"]),
                "pairs": summary["eval"]["num_tasks"] * num_layers,
                "train": train_violations(run),
            }
        )
    if progress:
        print(format_epsilon_table(rows))
    return {"epsilons": list(epsilons), "rows": rows}


def format_epsilon_table(rows: list[dict[str, Any]]) -> str:
    """Accuracy per layer per ε, then the violations on meta-test and in training."""
    if not rows:
        return ""
    num_layers = len(rows[0]["accuracy_per_layer"]) - 1
    lines = [f"{'epsilon':>8} " + " ".join(f"{'l' + str(layer):>6}" for layer in range(num_layers + 1))]
    lines[0] += f" {'violations test':>16} {'violations train':>17}"
    for row in rows:
        acc = " ".join(f"{a:>6.3f}" for a in row["accuracy_per_layer"])
        test = f"{row['violations']}/{row['pairs']}"
        train = f"{row['train']['violations']}/{row['train']['pairs']}"
        lines.append(f"{row['epsilon']:>8g} {acc} {test:>16} {train:>17}")
    return "\n".join(lines)
