# `make check` runs what CI runs, plus the linter.
.PHONY: check test lint bench
check: lint test
lint:
	ruff check surf_dist tests bench
	ruff format --check surf_dist tests bench
test:
	python -m pytest -q
	mypy surf_dist
bench:
	python bench/step_time.py
	python bench/comm_bench.py
