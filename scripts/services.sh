#!/usr/bin/env bash
# Makes sure RabbitMQ (with its management API, which the tests use to make a
# vhost per test) and PostgreSQL (trust auth on 127.0.0.1, database
# `hookline`) are installed and running. Idempotent; safe to run every time.
set -euo pipefail

log() { printf '[services] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_updated=
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

# --- RabbitMQ -----------------------------------------------------------------
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  log "installing rabbitmq-server"
  apt_install rabbitmq-server
fi
if ! as_root rabbitmqctl -q status >/dev/null 2>&1; then
  log "starting RabbitMQ"
  as_root rabbitmq-server -detached
  as_root rabbitmqctl -q await_startup --timeout 120 >/dev/null 2>&1 || as_root rabbitmqctl -q wait --timeout 120 /var/lib/rabbitmq/mnesia/rabbit@"$(hostname -s)".pid >/dev/null 2>&1 || true
fi
for _ in $(seq 1 120); do
  as_root rabbitmqctl -q status >/dev/null 2>&1 && break
  sleep 1
done
if ! curl -fs -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1; then
  log "enabling rabbitmq_management"
  as_root rabbitmq-plugins -q enable rabbitmq_management >/dev/null
  for _ in $(seq 1 60); do
    curl -fs -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null 2>&1 && break
    sleep 1
  done
fi
curl -fs -u guest:guest http://127.0.0.1:15672/api/overview >/dev/null || { log "RabbitMQ management API is not answering"; exit 1; }
log "RabbitMQ is up"

# --- PostgreSQL ---------------------------------------------------------------
if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
  log "installing postgresql"
  apt_install postgresql
fi
version=$(ls /etc/postgresql | sort -V | tail -n 1)
if ! pg_isready -q -h 127.0.0.1 -p 5432; then
  log "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  for _ in $(seq 1 60); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null 2>&1; then
  log "allowing trust auth for postgres on 127.0.0.1 (development machine)"
  hba="/etc/postgresql/$version/main/pg_hba.conf"
  as_root sed -i '1i host all all 127.0.0.1/32 trust\nlocal all all trust' "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main reload
  sleep 1
fi
psql -h 127.0.0.1 -U postgres -d postgres -tAc 'select 1' >/dev/null || { log "PostgreSQL does not accept postgres@127.0.0.1"; exit 1; }
if [ "$(psql -h 127.0.0.1 -U postgres -d postgres -tAc "select 1 from pg_database where datname = 'hookline'")" != 1 ]; then
  log "creating database hookline"
  psql -h 127.0.0.1 -U postgres -d postgres -qc 'create database hookline' >/dev/null
fi
log "PostgreSQL is up"
