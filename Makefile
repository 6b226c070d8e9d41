# The README's commands: `make up` runs the system, `make test` runs the tests.
# Each creates the virtualenv and installs what it needs on first use.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
ARGS ?=
# What `make lint` and `make typecheck` pass to ruff check and mypy: ARGS, except when
# `make test` runs them (its ARGS are pytest's; see `test:` below).
CHECK_ARGS = $(ARGS)

.PHONY: up down status demo test lint typecheck bench synth clean system-packages bytecode

# Debian packages VPC mode needs (nftables: NAT and security groups) and the tests use
# (skopeo: an OCI client checks the registry endpoint; chromium: the demo page's test in
# a real headless browser; awscli: Debian 12's is the AWS CLI v2, whose `aws logs tail`
# the AWS API's tests run, as /usr/bin/aws: the venv's `aws` is the v1 from PyPI; uidmap:
# newuidmap/newgidmap, with which a rootless twin maps a user's subordinate ids, so tasks
# run as their image's USER).
# Installed when root; otherwise the twin runs in loopback mode and the browser and CLI v2
# tests are skipped (they fail in CI), each saying why.
# COMMAND:PACKAGE; a|b|c:PACKAGE is satisfied by any of the commands.
SYSTEM_PACKAGES := nft:nftables skopeo:skopeo "chromium|chromium-browser|google-chrome:chromium" \
	/usr/bin/aws:awscli newuidmap:uidmap

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "fargo needs Python 3.11 or newer (PYTHON=python3.11 make ...)")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

# fargo's own modules compiled, as a regular (not editable) install has them: with
# PYTHONDONTWRITEBYTECODE set, every process the twin starts from fargo (the control
# plane, its DNS servers, the log router) would compile them again, 0.2-0.3 s each.
# Quick when nothing changed (it compares each file's time and size).
bytecode: $(STAMP)
	@$(BIN)/python -m compileall -q src

system-packages:
	@missing=""; for pair in $(SYSTEM_PACKAGES); do found=""; \
	  for cmd in $$(echo "$${pair%%:*}" | tr '|' ' '); do \
	    PATH="$$PATH:/usr/sbin:/sbin" command -v $$cmd >/dev/null && found=1; done; \
	  [ -n "$$found" ] || missing="$$missing $${pair##*:}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (apt-get)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "note: missing$$missing (sudo apt-get install$$missing): VPC mode needs nftables," \
	         "until then the twin runs in loopback mode; the demo page's browser test needs" \
	         "chromium, and the AWS CLI v2 tests /usr/bin/aws (awscli), until then they are" \
	         "skipped (and fail in CI)"; \
	  fi; \
	fi

up: $(STAMP) system-packages bytecode
	$(BIN)/fargo up $(ARGS)

down: $(STAMP)
	$(BIN)/fargo down $(ARGS)

status: $(STAMP)
	$(BIN)/fargo status $(ARGS)

demo: $(STAMP)
	$(BIN)/fargo demo $(ARGS)

synth: $(STAMP)
	$(BIN)/fargo synth $(ARGS)

# Without CHECK_ARGS, ruff checks the current folder and mypy the files pyproject.toml names.
lint: $(STAMP)
	$(BIN)/ruff check $(CHECK_ARGS)
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy $(CHECK_ARGS)

test: CHECK_ARGS =
test: system-packages lint typecheck bytecode
	$(BIN)/pytest $(ARGS)

bench: $(STAMP) bytecode
	@command -v wrk >/dev/null || { echo "installing wrk (apt-get)"; apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	$(BIN)/python bench/run.py $(ARGS)

clean:
	rm -rf $(VENV) .fargo cdk.out .mypy_cache .ruff_cache .pytest_cache
