"""Writing a run directory: atomic files, the summary (``summary.json``) and its costs, tables and figures."""
