# `make demo` and `make test` each create the virtual environment they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# Where torch comes from: PyTorch's CPU wheels, as pytorch.org documents them, unless you name
# another of its indexes (e.g. `make demo TORCH_INDEX=https://download.pytorch.org/whl/cu130`).
# Where that index cannot be reached, pip's own configuration decides (a local wheel mirror, or
# PyPI, whose Linux torch is the CUDA build): the install says so.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: venv demo test bench clean

$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@if $(PY) -c "import urllib.request as u; u.urlopen('$(TORCH_INDEX)/torch/', timeout=10)" 2>/dev/null; \
	then echo "installing torch from $(TORCH_INDEX)"; \
	     $(PY) -m pip install --quiet --extra-index-url $(TORCH_INDEX) -r requirements.lock; \
	else echo "$(TORCH_INDEX) is unreachable: installing torch from pip's configured sources"; \
	     $(PY) -m pip install --quiet -r requirements.lock; fi
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

venv: $(VENV)/.installed

demo: venv
	$(VENV)/bin/ursa demo --output demo-output/ursa-demo.html

test: venv
	$(PY) -m pytest -q

bench: venv
	$(PY) benchmarks/train_speed.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info
