# The project's tasks. `make test` is the one test command (README, .ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: test lint unit integration serve

test: lint unit integration

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace

$(VENV)/ok: tests/integration/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/integration/requirements.txt
	touch $@

integration: $(VENV)/ok
	cargo build -p sightline -p orders-service
	SIGHTLINE_BIN=$(CURDIR)/target/debug/sightline ORDERS_SERVICE_BIN=$(CURDIR)/target/debug/orders-service $(PY) -m pytest -q tests/integration

serve:
	cargo run --release -p sightline -- serve

