# Two entry points for a fresh machine with only Python 3:
#   make demo   - create .venv, install the package, train the Iris job
#   make test   - create .venv, install the test extras, the optional extras (tune, tensorboard,
#                 onnx, safetensors, docs) and PyTorch CPU for parity tests, run every test
#                 (the docs site's strict build and, where Chromium is installed, its browser test)
#   make docs   - build the docs site into site/ (make serve-docs: serve it on localhost:8000)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint venv install install-test docs serve-docs gradcheck bench bench-epochs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

install: $(BIN)/python
	$(PIP) install --quiet -e .

# Everything the tests use: pytest and friends, the optional extras, the docs tools.
install-test: $(BIN)/python
	$(PIP) install --quiet -e ".[test,tune,tensorboard,onnx,safetensors,docs]"
	# PyTorch (local CPU build) for the parity tests; they are skipped if it cannot be installed.
	$(PIP) install --quiet "torch==2.13.0" || echo "torch==2.13.0 not installable here: parity tests will be skipped"

demo: install
	$(BIN)/python -m neural_networks.examples.iris

test: install-test lint
	$(BIN)/python -m pytest -q tests

# ruff's lint rules and formatting check, configured in pyproject.toml.
lint: install-test
	$(BIN)/python -m ruff check .
	$(BIN)/python -m ruff format --check .

# The docs site (mkdocs, docs/ and mkdocs.yml) into site/, failing on any warning; the
# examples on its pages run during the build, the guides' ones with the optional extras.
DOCS_EXTRAS := tune,tensorboard,onnx,safetensors,docs
docs: $(BIN)/python
	$(PIP) install --quiet -e ".[$(DOCS_EXTRAS)]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

# The docs site on http://127.0.0.1:8000, rebuilt when a page or a docstring changes.
serve-docs: $(BIN)/python
	$(PIP) install --quiet -e ".[$(DOCS_EXTRAS)]"
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs serve --watch neural_networks --watch benchmarks/RESULTS.md

gradcheck: install
	$(BIN)/python -m neural_networks.gradcheck

# Speed against PyTorch CPU (a few minutes; see benchmarks/README.md).
bench: install-test
	$(PIP) install --quiet threadpoolctl
	$(BIN)/python benchmarks/bench_layers.py
	$(BIN)/python benchmarks/bench_gflops.py

# Whole epochs through the CLI against the same recipe in PyTorch CPU (several minutes).
bench-epochs: install-test
	$(PIP) install --quiet threadpoolctl
	$(BIN)/python benchmarks/torch_reference.py configs/cifar10_cnn.yaml
	$(BIN)/python benchmarks/torch_reference.py configs/cifar10_fast.yaml

# Remove the virtual environment, build outputs (the docs site and its screenshots included) and caches.
clean:
	rm -rf $(VENV) build dist site *.egg-info .pytest_cache
