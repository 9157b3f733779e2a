# Hookline: `make setup` once, then `make run` or `make test`.
CARGO ?= cargo
RELEASE := target/release/hookline

.PHONY: setup services tools build run test test-faults check-deploy lint fmt bench

setup: tools services build ## install what is missing, start services, build

tools:
	scripts/tools.sh

services:
	scripts/services.sh

# One release build of the whole workspace: the binary and the test
# binaries share it.
build:
	$(CARGO) build --release --workspace --bins

run: services build
	HOOKLINE__API__ALLOW_INSECURE_URLS=$${HOOKLINE__API__ALLOW_INSECURE_URLS:-true} \
	HOOKLINE__DELIVERY__ALLOWED_NETWORKS=$${HOOKLINE__DELIVERY__ALLOWED_NETWORKS:-127.0.0.0/8} \
	RUST_LOG=$${RUST_LOG:-info} $(RELEASE) all

test: tools services build check-deploy
	$(CARGO) nextest run --release --workspace --no-fail-fast

check-deploy:
	promtool check rules deploy/prometheus/alerts.yml
	python3 -m json.tool deploy/grafana/hookline.json >/dev/null

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

fmt:
	$(CARGO) fmt --all
