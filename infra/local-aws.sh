#!/usr/bin/env bash
# Local AWS for tests and the demo: moto in server mode on loopback.
#
#   infra/local-aws.sh install        create the venv with the pinned moto (idempotent)
#   infra/local-aws.sh start [PORT]   start moto_server on 127.0.0.1 (default: a free port);
#                                     prints the endpoint; does nothing if ours is running
#   infra/local-aws.sh stop           stop the moto_server this script started
#   infra/local-aws.sh endpoint       print the running endpoint
#
# The venv lives outside the clone (TIKTOK_DRAFTS_CACHE, default ~/.cache/tiktok-drafts)
# so that repeated runs reuse it; it is created when missing. Runtime files (pid, log,
# port) live in .local/ inside the clone, or in LOCAL_AWS_RUN_DIR.
set -euo pipefail

MOTO_VERSION="5.2.5"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="${TIKTOK_DRAFTS_CACHE:-$HOME/.cache/tiktok-drafts}"
VENV="$CACHE/venv-moto-$MOTO_VERSION"
# LOCAL_AWS_RUN_DIR gives a run its own instance (with-local-stack.sh does).
RUN_DIR="${LOCAL_AWS_RUN_DIR:-$ROOT/.local/moto}"
PID_FILE="$RUN_DIR/pid"
PORT_FILE="$RUN_DIR/port"
LOG_FILE="$RUN_DIR/moto.log"

log() { printf 'local-aws: %s\n' "$*" >&2; }

install() {
  if [ -x "$VENV/bin/moto_server" ] && [ -f "$VENV/.installed" ]; then
    return 0
  fi
  log "installing moto[server]==$MOTO_VERSION into $VENV"
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  "$ROOT/infra/python-venv.sh"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "moto[server]==$MOTO_VERSION"
  touch "$VENV/.installed"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

running() {
  [ -f "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null
}

wait_ready() {
  local url="$1" i
  for i in $(seq 1 150); do
    if python3 - "$url" <<'PY' 2>/dev/null
import sys, urllib.request
urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1).read()
PY
    then return 0; fi
    sleep 0.2
  done
  return 1
}

start() {
  install
  mkdir -p "$RUN_DIR"
  if running; then
    echo "http://127.0.0.1:$(cat "$PORT_FILE")"
    return 0
  fi
  local port="${1:-$(free_port)}"
  # setsid: moto gets its own process group, so stop can end it and its children.
  # Our launcher: moto_server with DynamoDB requests serialised (see it).
  setsid "$VENV/bin/python" "$ROOT/infra/moto_server.py" 127.0.0.1 "$port" >"$LOG_FILE" 2>&1 &
  echo $! >"$PID_FILE"
  echo "$port" >"$PORT_FILE"
  if ! wait_ready "http://127.0.0.1:$port"; then
    log "moto did not become ready on port $port; its log:"
    tail -n 30 "$LOG_FILE" >&2 || true
    stop
    return 1
  fi
  log "moto $MOTO_VERSION ready on http://127.0.0.1:$port"
  echo "http://127.0.0.1:$port"
}

stop() {
  if [ -f "$PID_FILE" ]; then
    local pid
    pid="$(cat "$PID_FILE")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$pid" 2>/dev/null || true
      log "moto stopped"
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
  fi
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) stop ;;
  endpoint) running && echo "http://127.0.0.1:$(cat "$PORT_FILE")" ;;
  *) echo "usage: $0 install|start [PORT]|stop|endpoint" >&2; exit 2 ;;
esac
