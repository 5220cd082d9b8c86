# rmsprop: R package (repo root) + NumPy engine (python/rmsprop).
#
#   make setup   install/verify everything (Debian pkgs, reticulate, .venv, R pkg)
#   make lint    setup, then flake8 + mypy (Python) and lintr (R/)
#   make test    setup, lint, then every test suite (pytest + testthat); non-zero on failure
#   make bench   setup, the bench's peers (torch), then bench/run.py
#   make demo    setup, then demo/biopsy.R (also demo("biopsy", package = "rmsprop"))
#   make check   R CMD build + R CMD check --as-cran --no-manual, then the
#                tarball test (scripts/test-tarball.sh) on the same tarball
#   make test-tarball  build the R tarball and use it from an empty library
#   make site    setup, then the pkgdown site (offline) into out/site
#   make document  regenerate NAMESPACE/man with roxygen2
#   make clean   remove build/check/test output;  make distclean  also the .venv

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

PYTHON := .venv/bin/python
OUT    := out

# The R side (reticulate) must use this checkout's venv.
RETICULATE_PYTHON := $(CURDIR)/.venv/bin/python
export RETICULATE_PYTHON

.PHONY: all setup lint test test-python test-r test-tarball bench demo site check document clean distclean

all: test

setup:
	@bash scripts/setup.sh

lint: setup
	@bash scripts/lint.sh

# setup runs every time: it only checks (a few seconds) when all is present.
test: setup lint
	@bash scripts/run-tests.sh

test-python: setup
	$(PYTHON) -m pytest tests/python -q

test-r: setup
	Rscript scripts/run-r-tests.R .

bench: setup
	@bash scripts/bench-peers.sh
	@if [ -f bench/run.py ]; then \
	  $(PYTHON) bench/run.py; \
	else echo "bench: skipped (no bench/run.py yet)"; fi

demo: setup
	RMSPROP_DEMO_OUT=$(OUT)/demo Rscript demo/biopsy.R

# The pkgdown site (reference grouped by _pkgdown.yml, the vignettes as
# articles), built without internet access into out/site.
site: setup
	Rscript -e 'options(pkgdown.internet = FALSE); pkgdown::build_site(".", install = FALSE, new_process = FALSE, override = list(destination = "$(OUT)/site"))'

test-tarball: setup
	@bash scripts/test-tarball.sh

document:
	Rscript -e 'roxygen2::roxygenise()'

check: setup
	@if [ ! -f DESCRIPTION ]; then echo "check: skipped (no DESCRIPTION yet)"; exit 0; fi; \
	pkg=$$(sed -n 's/^Package:[[:space:]]*//p' DESCRIPTION | head -n1 | tr -d '[:space:]'); \
	ver=$$(sed -n 's/^Version:[[:space:]]*//p' DESCRIPTION | head -n1 | tr -d '[:space:]'); \
	mkdir -p $(OUT)/check && cd $(OUT)/check && rm -rf "$$pkg"_*.tar.gz "$$pkg".Rcheck; \
	R CMD build "$(CURDIR)"; \
	_R_CHECK_FORCE_SUGGESTS_=false R CMD check --as-cran --no-manual "$${pkg}_$${ver}.tar.gz"; \
	bash "$(CURDIR)/scripts/test-tarball.sh" "$${pkg}_$${ver}.tar.gz"

clean:
	rm -rf $(OUT) build dist *.Rcheck *.tar.gz .pytest_cache .hypothesis
	find . -path ./.venv -prune -o \( -name __pycache__ -o -name '*.egg-info' \) -type d -print0 | xargs -0 rm -rf

distclean: clean
	rm -rf .venv
