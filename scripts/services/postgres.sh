#!/usr/bin/env bash
# A private PostgreSQL cluster for the integration tests, listening on 127.0.0.1 only.
#
#   scripts/services/postgres.sh start    install Debian's postgresql if missing, init and start the cluster
#   scripts/services/postgres.sh stop     stop the cluster (its data stays for the next start)
#   scripts/services/postgres.sh status   exit 0 when the cluster is up
#   scripts/services/postgres.sh env      print the export line the tests read
#
# Settings: NVDINO_SERVICES_DIR (default /tmp/nvdino-services), NVDINO_POSTGRES_PORT (default 55432).
# User postgres, password postgres, database nvdino. Durability is switched off: test data only.
set -euo pipefail

BASE="${NVDINO_SERVICES_DIR:-/tmp/nvdino-services}/postgres"
PORT="${NVDINO_POSTGRES_PORT:-55432}"
DATA="$BASE/data"
SOCKETS="$BASE/run"
PASSWORD=postgres
DATABASE=nvdino
CONNECTION="Host=127.0.0.1;Port=${PORT};Username=postgres;Password=${PASSWORD};Database=${DATABASE}"

log() { printf 'postgres: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

find_bin() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [[ -x $dir/initdb && -x $dir/pg_ctl && -x $dir/psql ]]; then
      PG_BIN=$dir
      return 0
    fi
  done
  return 1
}

apt_install() {
  [[ $(id -u) -eq 0 ]] || die "Debian package '$*' is missing and installing it needs root: sudo apt-get install -y $*"
  export DEBIAN_FRONTEND=noninteractive
  # A policy-rc.d answering 101 keeps the package from starting the system-wide cluster it creates.
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
  fi
  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    apt-get update -q >&2
  fi
  local rc=0
  apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >&2 || rc=$?
  if [[ $rc -ne 0 ]]; then
    log "apt-get install failed; refreshing package lists once"
    apt-get update -q >&2
    rc=0
    apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=300 "$@" >&2 || rc=$?
  fi
  [[ -n $added_policy ]] && rm -f "$policy"
  [[ $rc -eq 0 ]] || die "apt-get install $* failed"
}

ensure_installed() {
  find_bin && return 0
  log "installing Debian postgresql"
  local t0=$SECONDS
  apt_install postgresql
  # On hosts where services do start on install, the package's own cluster is not ours to keep.
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now postgresql.service >/dev/null 2>&1 || true
  elif command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" { print $1, $2 }' |
      while read -r version name; do pg_ctlcluster "$version" "$name" stop >/dev/null 2>&1 || true; done
  fi
  find_bin || die "postgresql installed but initdb/pg_ctl/psql not found under /usr/lib/postgresql/*/bin"
  log "installed in $((SECONDS - t0)) s"
}

# initdb and pg_ctl refuse to run as root: as root, run them as the postgres system user.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

prepare_dirs() {
  mkdir -p "$BASE"
  chmod 755 "$BASE" "$(dirname "$BASE")"
  mkdir -p "$SOCKETS"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$BASE" --shell /usr/sbin/nologin postgres
    chown postgres: "$BASE" "$SOCKETS"
    [[ -d $DATA ]] && chown -R postgres: "$DATA"
  fi
  return 0
}

init_cluster() {
  [[ -f $DATA/PG_VERSION ]] && return 0
  log "creating cluster in $DATA"
  local pwfile
  pwfile=$(mktemp)
  echo "$PASSWORD" >"$pwfile"
  chmod 644 "$pwfile"
  as_owner "$PG_BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --no-locale --no-sync >"$BASE/initdb.log" 2>&1 \
    || { rm -f "$pwfile"; cat "$BASE/initdb.log" >&2; die "initdb failed"; }
  rm -f "$pwfile"
  cat >>"$DATA/postgresql.conf" <<EOF

# Test cluster: loopback only, durability off for speed.
listen_addresses = '127.0.0.1'
port = ${PORT}
unix_socket_directories = '${SOCKETS}'
max_connections = 200
shared_buffers = 64MB
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
}

is_running() {
  find_bin || return 1
  [[ -f $DATA/PG_VERSION ]] || return 1
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

psql_admin() {
  as_owner "$PG_BIN/psql" -h "$SOCKETS" -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 -qtA "$@"
}

start() {
  ensure_installed
  prepare_dirs
  if is_running; then
    log "already running on 127.0.0.1:${PORT}"
    return 0
  fi
  local t0=$SECONDS
  init_cluster
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$BASE/postgres.log" -w -t 60 start >/dev/null \
    || { tail -n 30 "$BASE/postgres.log" >&2 || true; die "pg_ctl start failed; log in $BASE/postgres.log"; }
  if [[ -z $(psql_admin -c "SELECT 1 FROM pg_database WHERE datname = '${DATABASE}'") ]]; then
    psql_admin -c "CREATE DATABASE ${DATABASE}"
  fi
  log "ready in $((SECONDS - t0)) s: 127.0.0.1:${PORT}"
}

stop() {
  if is_running; then
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
    log "stopped"
  fi
  return 0
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) is_running ;;
  env) echo "export NVDINO_TEST_POSTGRES=\"${CONNECTION}\"" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
