"""On finished runs: re-evaluation and sweeps, tuning, parity comparison, the summary contract, reports."""
