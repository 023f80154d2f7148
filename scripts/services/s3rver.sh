#!/usr/bin/env bash
# Local S3-compatible server (s3rver) for integration tests and the development host.
# Usage: scripts/services/s3rver.sh start|stop|status|env
#   NVDINO_S3RVER_PORT  port on 127.0.0.1 (default 45690)
#   NVDINO_SERVICES_DIR runtime folder (default /tmp/nvdino-services); data and pid file under s3rver/
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$repo_root/scripts/tools/npm-package.sh"
version="3.7.1"
prefix="$repo_root/.tools/s3rver"
port="${NVDINO_S3RVER_PORT:-45690}"
services_dir="${NVDINO_SERVICES_DIR:-/tmp/nvdino-services}"
state_dir="$services_dir/s3rver"
data_dir="$state_dir/data"
pid_file="$state_dir/s3rver.pid"
log_file="$state_dir/s3rver.log"
url="http://127.0.0.1:$port"

install_if_missing() {
  npm_package_install "$prefix" s3rver "$version" s3rver.sh
}

answers() {
  # s3rver lists buckets on GET / for any caller; an HTTP status of 200 means it is serving.
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url/" || true)"
  [[ "$code" == "200" ]]
}

# The pid from the pid file, if that process is alive and still an s3rver (pids get reused).
running_pid() {
  if [[ -f "$pid_file" ]]; then
    local pid
    pid="$(cat "$pid_file")"
    if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q s3rver; then
      echo "$pid"
      return 0
    fi
  fi
  return 1
}

wait_until_answers() {
  local pid="$1"
  for _ in $(seq 1 100); do
    answers && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

start() {
  command -v curl >/dev/null || { echo "s3rver.sh: curl is required (apt-get install curl)" >&2; exit 1; }
  if pid="$(running_pid)"; then
    if wait_until_answers "$pid"; then
      echo "s3rver.sh: already running (pid $pid) at $url" >&2
      return 0
    fi
    echo "s3rver.sh: pid $pid does not answer at $url; restarting it" >&2
    stop
  fi
  if answers; then
    echo "s3rver.sh: port $port already answers but was not started from $pid_file; refusing to start a second server" >&2
    exit 1
  fi
  install_if_missing
  mkdir -p "$data_dir"
  # --configure-bucket is not used: tests create their own buckets.
  # setsid: the server must outlive the shell (and process group) that started it. s3rver-atomic.js is s3rver with
  # S3's atomic PUT (s3rver itself tears an object whose upload is cut off).
  setsid nohup node "$repo_root/scripts/services/s3rver-atomic.js" "$prefix/node_modules" 127.0.0.1 "$port" "$data_dir" \
    >"$log_file" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pid_file"
  if wait_until_answers "$pid"; then
    echo "s3rver.sh: started (pid $pid) at $url, data in $data_dir" >&2
    return 0
  fi
  if kill -0 "$pid" 2>/dev/null; then
    echo "s3rver.sh: s3rver (pid $pid) did not answer at $url within 10 s; log $log_file:" >&2
    kill "$pid" 2>/dev/null || true
  else
    echo "s3rver.sh: s3rver exited during start-up; log $log_file:" >&2
  fi
  cat "$log_file" >&2
  rm -f "$pid_file"
  exit 1
}

stop() {
  if pid="$(running_pid)"; then
    kill "$pid"
    for _ in $(seq 1 50); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
      # Gone before this returns: a start right after must find the port free.
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    fi
    echo "s3rver.sh: stopped (pid $pid)" >&2
  else
    echo "s3rver.sh: not running" >&2
  fi
  rm -f "$pid_file"
}

status() {
  if pid="$(running_pid)" && answers; then
    echo "s3rver.sh: running (pid $pid) at $url" >&2
  else
    echo "s3rver.sh: not running" >&2
    return 1
  fi
}

print_env() {
  echo "export NVDINO_TEST_S3_URL=$url NVDINO_TEST_S3_ACCESS_KEY=S3RVER NVDINO_TEST_S3_SECRET_KEY=S3RVER"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) print_env ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
