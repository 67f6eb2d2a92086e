# The README's two commands: `make all` (set up, then run every notebook with the smoke profile) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= smoke

.PHONY: all run test unit nbval lab strip clean-artifacts clean-venv

all: run

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "pairlib needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (pairlib)" > /dev/null
	touch $@

# Every notebook in order with $(PROFILE), writing outputs/$(PROFILE)/.
run: $(BIN)/.installed
	$(BIN)/pairlib run --profile $(PROFILE)

# The unit tests and every notebook under nbval with its smoke defaults, in one run shared by $(TEST_WORKERS) workers
# (conftest.py: each worker's torch gets its share of the cores and its own outputs; a notebook that reuses another's
# models runs after it in the same worker; the notebooks go first, their chains being the longest pieces of work).
# Outputs go to a temporary folder, removed after (the smoke models add up to gigabytes), also on Ctrl-C or a kill:
# sh runs no EXIT trap on a signal unless the signal's own trap exits. `make unit` and `make nbval` run either half.
TEST_WORKERS ?= 2
TEST_PATHS ?= notebooks tests

test: $(BIN)/.installed
	out=$$(mktemp -d) && trap 'rm -rf "$$out"' EXIT && trap 'exit 130' INT TERM && \
	HF_HUB_OFFLINE=1 PAIRLIB_OUTPUTS=$$out $(BIN)/pytest --nbval-lax -n $(TEST_WORKERS) --dist loadfile --durations=30 -p no:cacheprovider $(TEST_PATHS)

unit:
	$(MAKE) test TEST_PATHS=tests

nbval:
	$(MAKE) test TEST_PATHS=notebooks

# From the repository root, so that notebooks/ and the executed outputs/ are both in Lab's file browser.
lab: $(BIN)/.installed
	$(BIN)/jupyter lab --ServerApp.root_dir=.

# Outputs saved into notebooks/ while working in Lab, cleared before committing (tests/test_notebook_files.py checks).
strip: $(BIN)/.installed
	$(BIN)/jupyter nbconvert --clear-output --inplace --log-level=WARN notebooks/*.ipynb

# Trained models and caches of a profile (the smoke profile's add up to several GB); results stay.
clean-artifacts:
	rm -rf outputs/$(PROFILE)/artifacts

clean-venv:
	rm -rf $(VENV)
