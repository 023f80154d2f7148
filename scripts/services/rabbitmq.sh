#!/usr/bin/env bash
# A private RabbitMQ node for the integration tests, every listener bound to 127.0.0.1.
#
#   scripts/services/rabbitmq.sh start    install Debian's rabbitmq-server if missing, start the node
#   scripts/services/rabbitmq.sh stop     stop the node (and the epmd it started)
#   scripts/services/rabbitmq.sh status   exit 0 when the node is up
#   scripts/services/rabbitmq.sh env      print the export line the tests read
#
# Settings: NVDINO_SERVICES_DIR (default /tmp/nvdino-services), NVDINO_RABBITMQ_PORT (default 56720),
# NVDINO_RABBITMQ_NODENAME (default nvdino; a second node on this machine needs its own),
# NVDINO_RABBITMQ_CONSUMER_TIMEOUT_MS (how long a delivery may stay unacknowledged; default one day, as
# deploy/README.md asks of a production broker; the fault campaign sets it short to make it fire).
# The node uses PORT (AMQP), PORT+1 (Erlang distribution), PORT+2 (its own epmd), PORT+3..PORT+8
# (rabbitmqctl's distribution) and PORT+9 (management HTTP API, which tests use to make a virtual
# host per test class), so it never meets a system broker on 5672/4369/25672/15672.
set -euo pipefail

BASE="${NVDINO_SERVICES_DIR:-/tmp/nvdino-services}/rabbitmq"
PORT="${NVDINO_RABBITMQ_PORT:-56720}"
RMQ_BIN=/usr/lib/rabbitmq/bin
URI="amqp://guest:guest@127.0.0.1:${PORT}/"
MANAGEMENT_PORT="$((PORT + 9))"
MANAGEMENT_URI="http://guest:guest@127.0.0.1:${MANAGEMENT_PORT}/"

log() { printf 'rabbitmq: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

node_env() {
  # The Erlang cookie lives in $HOME/.erlang.cookie: a private HOME keeps it away from any other node.
  export HOME="$BASE"
  export RABBITMQ_NODENAME="${NVDINO_RABBITMQ_NODENAME:-nvdino}@localhost"
  export RABBITMQ_USE_LONGNAME=false
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
  export RABBITMQ_NODE_PORT="$PORT"
  export RABBITMQ_DIST_PORT="$((PORT + 1))"
  export ERL_EPMD_ADDRESS=127.0.0.1
  export ERL_EPMD_PORT="$((PORT + 2))"
  export RABBITMQ_CTL_DIST_PORT_MIN="$((PORT + 3))"
  export RABBITMQ_CTL_DIST_PORT_MAX="$((PORT + 8))"
  # RABBITMQ_NODE_IP_ADDRESS only covers AMQP; distribution listeners need the kernel option too.
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CONF_ENV_FILE="$BASE/rabbitmq-env.conf"
  export RABBITMQ_CONFIG_FILE="$BASE/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$BASE/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$BASE/enabled_plugins"
  export RABBITMQ_MNESIA_BASE="$BASE/mnesia"
  export RABBITMQ_LOG_BASE="$BASE/log"
  export RABBITMQ_PID_FILE="$BASE/rabbitmq.pid"
  export RABBITMQ_ALLOW_INPUT=
}

ctl() { "$RMQ_BIN/rabbitmqctl" "$@"; }

# wait_gone PID SECONDS: returns 0 once the process has exited, 1 if it still runs after SECONDS.
wait_gone() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.1; done
  ! kill -0 "$1" 2>/dev/null
}

# What a node that did not come up left behind: the launcher's output, its logs, the head of a crash dump.
startup_failure() {
  { cat "$BASE/log/startup.out"; tail -n 50 "$BASE"/log/*.log; head -n 5 "$BASE"/erl_crash.dump; } >&2 2>/dev/null || true
  # An eaddrinuse in the logs: what holds the port (a listener, or an outgoing connection using it as source port).
  if command -v ss >/dev/null 2>&1; then
    log "sockets on port ${PORT}:"
    ss -tanp "( sport = :${PORT} )" >&2 2>/dev/null || true
  fi
  die "$1; logs in $BASE/log"
}

is_running() {
  [[ -x "$RMQ_BIN/rabbitmqctl" && -f "$BASE/rabbitmq.pid" ]] || return 1
  node_env
  ctl -q status >/dev/null 2>&1
}

apt_install() {
  [[ $(id -u) -eq 0 ]] || die "Debian package '$*' is missing and installing it needs root: sudo apt-get install -y $*"
  export DEBIAN_FRONTEND=noninteractive
  # A policy-rc.d answering 101 keeps the package from starting its own system-wide broker.
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy" && added_policy=1
  fi
  if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
    apt-get update -q >&2
  fi
  local rc=0
  apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >&2 || rc=$?
  if [[ $rc -ne 0 ]]; then
    log "apt-get install failed; refreshing package lists once"
    apt-get update -q >&2
    rc=0
    apt-get install -y -q -o DPkg::Lock::Timeout=300 "$@" >&2 || rc=$?
  fi
  [[ -n $added_policy ]] && rm -f "$policy"
  [[ $rc -eq 0 ]] || die "apt-get install $* failed"
}

stop_system_broker() {
  # Where services do start on install (systemd hosts), the system broker listens on 0.0.0.0.
  if command -v systemctl >/dev/null 2>&1 && [[ -d /run/systemd/system ]]; then
    systemctl disable --now rabbitmq-server.service epmd.socket epmd.service >/dev/null 2>&1 || true
  fi
  if pgrep -u rabbitmq beam.smp >/dev/null 2>&1; then
    log "stopping the system-wide rabbitmq-server the package started"
    service rabbitmq-server stop >/dev/null 2>&1 || true
  fi
  # The system broker leaves its epmd on 0.0.0.0:4369; it exits on request once no node is registered.
  if pgrep -u rabbitmq -x epmd >/dev/null 2>&1; then
    env -u ERL_EPMD_PORT -u ERL_EPMD_ADDRESS epmd -kill >/dev/null 2>&1 || true
  fi
}

ensure_installed() {
  [[ -x "$RMQ_BIN/rabbitmq-server" ]] && return 0
  log "installing Debian rabbitmq-server"
  local t0=$SECONDS
  apt_install rabbitmq-server
  stop_system_broker
  log "installed in $((SECONDS - t0)) s"
}

write_config() {
  mkdir -p "$BASE" "$BASE/log" "$BASE/mnesia"
  : >"$BASE/rabbitmq-env.conf"
  # Management only, on loopback: no Prometheus or other listeners.
  echo '[rabbitmq_management].' >"$BASE/enabled_plugins"
  cat >"$BASE/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:${PORT}
loopback_users.guest = true
disk_free_limit.absolute = 20MB
log.console = false
log.file.level = warning
management.tcp.ip = 127.0.0.1
management.tcp.port = ${MANAGEMENT_PORT}
consumer_timeout = ${NVDINO_RABBITMQ_CONSUMER_TIMEOUT_MS:-86400000}
EOF
}

start() {
  ensure_installed
  if is_running; then
    log "already running on 127.0.0.1:${PORT}"
    return 0
  fi
  local t0=$SECONDS
  write_config
  node_env
  rm -f "$RABBITMQ_PID_FILE"
  log "starting node ${RABBITMQ_NODENAME} on 127.0.0.1:${PORT} (data in ${BASE})"
  (cd "$BASE" && "$RMQ_BIN/rabbitmq-server" -detached) >"$BASE/log/startup.out" 2>&1 \
    || { cat "$BASE/log/startup.out" >&2; die "rabbitmq-server -detached failed"; }
  # `wait` returns once the pid file exists and the node answers; give up after 120 s.
  local i
  for ((i = 0; i < 120; i++)); do [[ -s $RABBITMQ_PID_FILE ]] && break; sleep 1; done
  [[ -s $RABBITMQ_PID_FILE ]] || startup_failure "no pid file after 120 s"
  if ! ctl -q wait --timeout 120 "$RABBITMQ_PID_FILE" >/dev/null || ! ctl -q await_startup --timeout 120 >/dev/null; then
    startup_failure "node did not come up"
  fi
  log "ready in $((SECONDS - t0)) s: $URI"
}

stop() {
  if [[ ! -x "$RMQ_BIN/rabbitmqctl" ]]; then
    return 0
  fi
  node_env
  if [[ -f $RABBITMQ_PID_FILE ]]; then
    local pid
    pid=$(cat "$RABBITMQ_PID_FILE" 2>/dev/null || true)
    ctl -q stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || true
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      wait_gone "$pid" 20 || kill -9 "$pid" 2>/dev/null || true
    fi
    # A node still dying holds its ports and its name: a start right after this one would fail.
    [[ -z $pid ]] || wait_gone "$pid" 30 || die "node (pid $pid) did not exit"
    rm -f "$RABBITMQ_PID_FILE"
    log "stopped"
  fi
  # This epmd listens on a port of our own, so nothing else relies on it.
  epmd -kill >/dev/null 2>&1 || true
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) is_running ;;
  env) echo "export NVDINO_TEST_RABBITMQ=${URI} NVDINO_TEST_RABBITMQ_MANAGEMENT=${MANAGEMENT_URI}" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
