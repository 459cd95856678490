# Inkwell. `make run` and `make test` work on a fresh machine with Python 3.11, pip and make.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# checkov pins boto3 apart from requirements-dev.txt: it gets a venv of its own
CHECKOV_VENV ?= .venv-checkov
# so does Schemathesis (tests/e2e/test_schemathesis.py runs its CLI against the local stack)
SCHEMATHESIS_VENV ?= .venv-schemathesis
STAGE ?= dev
export AWS_DEFAULT_REGION ?= us-east-1

.PHONY: run test suite checkov schemathesis lint typecheck bench constraints package deploy teardown policies clean audit-verify

$(BIN)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-dev.txt
	touch $@

$(CHECKOV_VENV)/bin/.installed: requirements-checkov.txt constraints-checkov.txt
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-checkov.txt
	touch $@

checkov: $(CHECKOV_VENV)/bin/.installed

$(SCHEMATHESIS_VENV)/bin/.installed: requirements-schemathesis.txt constraints-schemathesis.txt
	test -x $(SCHEMATHESIS_VENV)/bin/python || $(PYTHON) -m venv $(SCHEMATHESIS_VENV)
	$(SCHEMATHESIS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-compile -r requirements-schemathesis.txt
	touch $@

schemathesis: $(SCHEMATHESIS_VENV)/bin/.installed

run: $(BIN)/.installed
	$(BIN)/python -m local

# The three venvs install side by side, then lint, the type check and the suite run side by side;
# the suite on every core (pytest-xdist, a test module's tests on one worker; tests/aws_recorder.py
# merges the workers' AWS calls and judges the IAM policy on them at the end).
TEST_WORKERS ?= auto
test:
	$(MAKE) --no-print-directory -j3 $(BIN)/.installed $(CHECKOV_VENV)/bin/.installed $(SCHEMATHESIS_VENV)/bin/.installed
	$(MAKE) --no-print-directory -j3 --output-sync=line lint typecheck suite

suite: $(BIN)/.installed $(CHECKOV_VENV)/bin/.installed $(SCHEMATHESIS_VENV)/bin/.installed
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# bandit at medium severity and up: its low findings here are asserts of invariants, the
# non-cryptographic random of backoff jitter, and names of settings that hold no secret
lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/bandit --quiet --recursive --severity-level medium app.py chalicelib local infra

typecheck: $(BIN)/.installed
	$(BIN)/mypy app.py chalicelib

bench: $(BIN)/.installed
	$(BIN)/python -m bench

# An audit export (GET /api/audit/exports/{id}'s url) checked with the digest key's public half
# alone (KEY: a file holding GET /api/audit/public-key's answer or its public_key_pem): no network.
audit-verify: $(BIN)/.installed
	$(BIN)/python -m chalicelib.audit.offline $(FILE) --key $(KEY)

# `make test` also packages the prod stage, lints its template and runs checkov on it (tests/package).
package: $(BIN)/.installed
	$(BIN)/python -m infra.package $(STAGE)
	$(BIN)/cfn-lint dist/$(STAGE)/sam.json

# With AWS credentials: creates the stage (once), then `python -m infra.chalice_cli deploy --stage $(STAGE)` updates
# its code. ALARM_EMAIL=you@example.com subscribes to the stage's alarms.
deploy: $(BIN)/.installed
	$(BIN)/python -m infra.deploy $(STAGE) $(if $(ALARM_EMAIL),--alarm-email $(ALARM_EMAIL))

# prod also needs YES=1; DELETE_SECRETS=1 removes the stage's SSM secrets too.
teardown: $(BIN)/.installed
	$(BIN)/python -m infra.deploy $(STAGE) --teardown $(if $(YES),--yes) $(if $(DELETE_SECRETS),--delete-secrets)

# After changing infra/iam.py (or adding a stage to .chalice/config.json): the committed
# .chalice/policy-<stage>.json files that `chalice deploy` reads (tests fail until they match).
policies: $(BIN)/.installed
	$(BIN)/python -m infra.iam --write

# After changing a pin in requirements*.txt and installing it: record the whole venv again.
constraints: $(BIN)/.installed $(CHECKOV_VENV)/bin/.installed $(SCHEMATHESIS_VENV)/bin/.installed
	{ sed -n '/^#/p' constraints.txt; $(BIN)/python -m pip freeze --exclude-editable; } > constraints.txt.new
	mv constraints.txt.new constraints.txt
	{ sed -n '/^#/p' constraints-checkov.txt; $(CHECKOV_VENV)/bin/python -m pip freeze; } > constraints-checkov.txt.new
	mv constraints-checkov.txt.new constraints-checkov.txt
	{ sed -n '/^#/p' constraints-schemathesis.txt; $(SCHEMATHESIS_VENV)/bin/python -m pip freeze; } > constraints-schemathesis.txt.new
	mv constraints-schemathesis.txt.new constraints-schemathesis.txt

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) $(SCHEMATHESIS_VENV) dist .pytest_cache
