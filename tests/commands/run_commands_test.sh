#!/usr/bin/env bash
# The README's run commands, run as a user runs them: scripts/run (one instance on SQLite) and
# scripts/run-cluster (three instances on a private PostgreSQL behind nginx). Each must start,
# take a payment that the simulator calls back about, and on Ctrl-C (SIGINT to its process group) stop
# every process it started and remove its temporary folder.
set -euo pipefail
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
chmod 711 "$tmp"  # run-cluster's PostgreSQL runs as the postgres user inside it
export TMPDIR="$tmp"
group=""
cleanup() {
  [ -z "$group" ] || kill -KILL -- "-$group" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  [ ! -f "$tmp/out.log" ] || tail -n 30 "$tmp/out.log" >&2
  exit 1
}

# A base port whose next four ports are free too (run-cluster puts instances on base+1..+3).
free_base() {
  python3 - <<'PY'
import socket
for _ in range(100):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); base = s.getsockname()[1]; s.close()
    try:
        for p in range(base, base + 5):
            t = socket.socket(); t.bind(("127.0.0.1", p)); t.close()
        print(base); break
    except OSError:
        pass
PY
}

# Polls `curl URL` until its body matches the regular expression, for up to $3 seconds.
await() {
  local url=$1 pattern=$2 seconds=$3
  for _ in $(seq $((seconds * 5))); do
    if curl -fsS --max-time 2 "$url" 2>/dev/null | grep -Eq "$pattern"; then return 0; fi
    kill -0 "$group" 2>/dev/null || return 1  # the command exited
    sleep 0.2
  done
  return 1
}

# Runs one command, pays, waits for a callback to apply, stops it with Ctrl-C, checks it cleaned up.
check() {
  local name=$1 port sim
  port=$(free_base)
  sim=$((port + 4))
  echo "== scripts/$name on :$port (simulator :$sim)"
  PORT=$port SIM_PORT=$sim setsid "scripts/$name" >"$tmp/out.log" 2>&1 </dev/null &
  group=$!
  await "http://127.0.0.1:$port/readyz" ready 120 || fail "scripts/$name did not become ready"

  local created id
  created=$(curl -sS -XPOST "http://127.0.0.1:$port/payments" \
    -d '{"account_id":1,"amount_cents":-2500,"merchant_name":"Blue Bottle"}')
  id=$(echo "$created" | jq -er '.money_movement_id') || fail "no payment created: $created"
  # The simulator's callbacks reach the service (through nginx for run-cluster) and apply; the
  # status they end in is the simulator's choice (posted, pending, failed, ...).
  await "http://127.0.0.1:$port/payments/$id" '"callbacks_applied":[1-9]' 60 ||
    fail "no callback applied to payment $id: $(curl -sS "http://127.0.0.1:$port/payments/$id")"
  await "http://127.0.0.1:$port/accounts" '"account_id":1' 5 || fail "GET /accounts"

  kill -INT -- "-$group"
  for _ in $(seq 100); do
    kill -0 -- "-$group" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 -- "-$group" 2>/dev/null; then
    ps -o pid,args -g "$group" >&2 || true
    fail "processes of scripts/$name still run 20 s after Ctrl-C"
  fi
  group=""
  # PostgreSQL runs as another user in a session of its own: it must be gone too.
  if pgrep -f "postgres -D $tmp/" >/dev/null; then fail "scripts/$name left PostgreSQL running"; fi
  local left
  left=$(find "$tmp" -mindepth 1 -maxdepth 1 ! -name out.log ! -name 'run.db*')
  [ -z "$left" ] || fail "scripts/$name left $left"
  echo "   ok: payment $id called back; everything stopped and removed"
}

export BIND=127.0.0.1  # servers started by tests listen on loopback only
export DATABASE_URL="sqlite:$tmp/run.db"
check run
[ -f "$tmp/run.db" ] || fail "scripts/run kept no database"
rm -f "$tmp"/run.db*
unset DATABASE_URL
check run-cluster
