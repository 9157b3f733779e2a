#!/usr/bin/env bash
# Installs the tools `make test` needs when they are missing: cargo-nextest,
# cargo-machete and cargo-deny (for `make lint`), rustfmt and clippy, curl,
# and promtool (Debian package `prometheus`) for checking alert rules.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
if [ ${#missing[@]} -gt 0 ]; then
  echo "[tools] installing ${missing[*]}"
  as_root apt-get update -qq
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  echo "[tools] adding rustfmt and clippy"
  rustup component add rustfmt clippy
fi
for tool in cargo-machete cargo-deny; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "[tools] installing $tool"
    cargo install "$tool" --locked
  fi
done
if ! cargo nextest --version >/dev/null 2>&1; then
  echo "[tools] installing cargo-nextest"
  cargo install cargo-nextest --locked
fi
# The libraries of the producer examples in examples/producers (pika, amqplib).
# Best effort: their test skips, saying so, when a library is not there.
if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import pika' 2>/dev/null \
  && ! /usr/bin/python3 -c 'import pika' 2>/dev/null; then
  echo "[tools] installing python3-pika"
  { DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends python3-pika \
    || { as_root apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
         as_root apt-get install -y -qq --no-install-recommends python3-pika; }; } >/dev/null 2>&1 \
    || echo "[tools] python3-pika not installable: the Python producer test will skip"
fi
producers="$(cd "$(dirname "$0")/.." && pwd)/examples/producers"
if command -v npm >/dev/null 2>&1 && [ ! -d "$producers/node_modules/amqplib" ]; then
  echo "[tools] installing amqplib for examples/producers"
  (cd "$producers" && timeout 180 npm ci --no-audit --no-fund --silent >/dev/null 2>&1) \
    || echo "[tools] npm could not install amqplib: the Node producer test will skip"
fi
# Python's standardwebhooks for examples/receivers, into the examples' own
# directory (nothing system-wide; the test puts it on PYTHONPATH).
receivers="$(cd "$(dirname "$0")/.." && pwd)/examples/receivers"
if command -v python3 >/dev/null 2>&1 && [ ! -d "$receivers/.pylib/standardwebhooks" ]; then
  echo "[tools] installing standardwebhooks for examples/receivers"
  timeout 180 python3 -m pip install --quiet --disable-pip-version-check --target "$receivers/.pylib" \
    standardwebhooks >/dev/null 2>&1 \
    || echo "[tools] pip could not install standardwebhooks: that receiver example's test will skip"
fi
