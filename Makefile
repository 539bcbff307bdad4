# Two entry points, both of which set everything up on a fresh machine:
#   make demo   -- install, then run the main job on the built-in synthetic data
#   make test   -- install, then run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
UDATUNE := $(VENV)/bin/udatune
# torch/torchvision are pinned here (not in pyproject.toml, which keeps an open range for
# users) so that set-up installs the CPU-friendly build this project is tested with.
TORCH_PINS := torch==2.14.1 torchvision==0.29.1

.PHONY: setup demo test bench clean

# constraints.txt holds the tested version of every dependency (a lock for set-up and CI);
# pyproject.toml keeps open ranges for people who install udatune into their own environment.
$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -c constraints.txt $(TORCH_PINS)
	$(PY) -m pip install -q -c constraints.txt -e ".[dev]"
	touch $@

setup: $(VENV)/.installed

# The default sweep, its best recipe confirmed on fresh seeds against the default and supervised
# (`udatune search --confirm 1`), then the report, also as HTML; it ends with the verdict.
demo: setup
	$(UDATUNE) search --confirm 1
	$(UDATUNE) report --html runs/reports/demo.html

test: setup
	$(PY) -m pytest

clean:
	rm -rf runs .pytest_cache
