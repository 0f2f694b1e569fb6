"""Data: registered datasets (``catalog``), frozen feature maps, per-task augmentations and partitions, and the
tasks a worker builds for its own agents (``tasks.TaskSource``); every draw is keyed by (seed, split, task, ...)
so workers agree without talking. ``spec`` holds the settings and their validation (no torch)."""
