# `make check` runs what CI runs (.ci/run): the tests, then the linters.
.PHONY: check test lint bench
check: test lint
test:
	python -m pytest -q
lint:
	ruff check surf_dist tests bench examples
	ruff format --check surf_dist tests bench examples
	mypy surf_dist
bench:
	python bench/step_time.py
	python bench/comm_bench.py
	python bench/backends_bench.py
