# The README's two commands: `make all` (set up, then run every notebook with the smoke profile) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PROFILE ?= smoke

.PHONY: all run test unit nbval lab strip git-filter clean-artifacts clean-venv

# What a committed source notebook keeps: no outputs, counts or the metadata a kernel or Lab adds; cell ids stay
# (nbformat 4.5 wants them). One setting for `make strip` and the git filter, so both write the same bytes.
NBSTRIP = --keep-id --extra-keys "metadata.language_info metadata.widgets cell.metadata.execution"

all: run

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "pairlib needs Python 3.11, found " + sys.version.split()[0]'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e ".[dev]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (pairlib)" > /dev/null
	$(MAKE) -s git-filter
	touch $@

# Notebooks run in Lab keep their outputs on disk, but git sees them stripped (.gitattributes names the filter for
# notebooks/ only; outputs/<profile>/ keeps its executed notebooks whole), so `git status` stays clean.
git-filter:
	@if git rev-parse --git-dir > /dev/null 2>&1; then \
	  git config filter.nbstripout.clean '"$(abspath $(BIN))/python" -m nbstripout $(NBSTRIP)'; \
	  git config filter.nbstripout.smudge cat; \
	  git config diff.ipynb.textconv '"$(abspath $(BIN))/python" -m nbstripout -t $(NBSTRIP)'; \
	fi

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

# Outputs saved into notebooks/ while working in Lab, cleared from the files themselves (git sees them stripped
# already); on a clean tree it changes nothing (tests/test_notebook_files.py checks both).
strip: $(BIN)/.installed
	$(BIN)/python -m nbstripout $(NBSTRIP) notebooks/*.ipynb

# Trained models and caches of a profile (the smoke profile's add up to several GB); results stay.
clean-artifacts:
	rm -rf outputs/$(PROFILE)/artifacts

clean-venv:
	rm -rf $(VENV)
