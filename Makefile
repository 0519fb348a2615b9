# Two commands on a fresh machine:  `make demo` runs the job on the embedded default; `make test` runs the tests.
# Both create .venv (Python >= 3.11) with everything the project needs on first use; re-running is a no-op.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
export YOLO_OFFLINE := 1

.PHONY: demo test lint clean

# constraints.txt pins the whole tested environment: installs are reproducible and pip never backtracks.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(PY) -m jobs.demo

# Two workers: most tests wait on Ray, S3 or timeouts, not the CPU. The README test runs every README command
# (make demo, a multi-node cluster, ray job submit), alone after the rest: beside a worker it ran past 15 min.
test: $(VENV)/.installed
	$(PY) -m pytest -n 2 --dist loadfile --ignore=tests/test_readme.py
	$(PY) -m pytest tests/test_readme.py

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check fusion trt jobs tests benchmarks

clean:
	rm -rf $(VENV) demo-output
