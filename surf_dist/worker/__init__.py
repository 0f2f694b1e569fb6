"""Meta-training and evaluation on one worker: the step (``trainer``), the loop around it (``loop``),
checkpoints, metrics, failure injection, evaluation and re-evaluation of trained runs."""
