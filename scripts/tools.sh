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
