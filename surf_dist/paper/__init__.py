"""The paper's five figures from ordinary training runs: ``surf-dist paper-figures`` and ``sweep-epsilon``."""
