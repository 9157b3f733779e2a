# Hookline: `make setup` once, then `make run` or `make test`.
CARGO ?= cargo
RELEASE := target/release/hookline

.PHONY: setup services tools build run test test-faults check-deploy lint fmt bench fuzz

setup: tools services build ## install what is missing, start services, build

tools:
	scripts/tools.sh

services:
	scripts/services.sh

# One release build of the whole workspace: the binary and the test
# binaries share it.
build:
	$(CARGO) build --release --workspace --all-targets

run: services build
	HOOKLINE__API__ALLOW_INSECURE_URLS=$${HOOKLINE__API__ALLOW_INSECURE_URLS:-true} \
	HOOKLINE__DELIVERY__ALLOWED_NETWORKS=$${HOOKLINE__DELIVERY__ALLOWED_NETWORKS:-127.0.0.0/8} \
	RUST_LOG=$${RUST_LOG:-info} $(RELEASE) all

# Lint first (it needs no services), then the whole suite on one release build.
test: tools lint services build check-deploy
	$(CARGO) nextest run --release --workspace --no-fail-fast

check-deploy:
	promtool check rules deploy/prometheus/alerts.yml
	python3 -m json.tool deploy/grafana/hookline.json >/dev/null

# fmt, clippy, unused dependencies (cargo-machete), and licences, bans and
# sources (cargo-deny, deny.toml). RustSec advisories need github.com: they
# are checked when it answers, and skipped with a notice when it does not.
lint: tools
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --release --workspace --all-targets -- -D warnings
	$(CARGO) machete
	$(CARGO) deny check licenses bans sources
	@if timeout 5 git ls-remote https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then \
		$(CARGO) deny check advisories; \
	else echo "[lint] github.com unreachable: RustSec advisories not checked"; fi

fmt:
	$(CARGO) fmt --all

# Property-based fuzzing of envelope parsing, task decoding and signature
# header parsing: FUZZ_CASES cases per target, at most FUZZ_SECONDS.
FUZZ_CASES ?= 200000
FUZZ_SECONDS ?= 300
fuzz:
	PROPTEST_CASES=$(FUZZ_CASES) timeout $(FUZZ_SECONDS) $(CARGO) nextest run --release -p hookline-fuzz --run-ignored only --no-capture

# The benchmark, outside `make test`: the raw RabbitMQ ceiling, then the real
# pipeline's throughput, latency, fairness and footprint; prints one table and
# writes target/bench/report.json and report.md. Flags: BENCH_ARGS='--help'.
bench: services
	$(CARGO) build --release -p hookline-bench -p hookline
	target/release/hookline-bench $(BENCH_ARGS)

# Fault injection: broker restarts, dropped connections, a memory alarm,
# kill -9, PostgreSQL down, poison messages, misbehaving receivers and the
# security rules. Tests that break a server start their own RabbitMQ node and
# PostgreSQL cluster (scratch directories under $TMPDIR/hookline-faults), so
# nothing else is disturbed; `make test` runs all of these too.
test-faults: tools services build
	$(CARGO) nextest run --release -p hookline-tests --no-fail-fast \
		-E 'binary(faults) | (binary(it) & test(/^(receivers|security)::/))'
