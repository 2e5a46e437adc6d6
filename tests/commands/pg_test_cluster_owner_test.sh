#!/usr/bin/env bash
# scripts/pg-test-cluster with PG_TEST_CLUSTER_OWNER: a cluster whose owner is killed with
# SIGKILL (no trap of its own runs) is stopped and its folder removed all the same.
set -euo pipefail
cd "$(dirname "$0")/../.."

tmp=$(mktemp -d)
chmod 711 "$tmp"
owner_pid=""
cleanup() {
  [ -z "$owner_pid" ] || kill -KILL "$owner_pid" 2>/dev/null || true
  scripts/pg-test-cluster stop "$tmp/pg" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

sleep 600 &
owner_pid=$!
url=$(PG_TEST_CLUSTER_OWNER=$owner_pid scripts/pg-test-cluster start "$tmp/pg")
psql -qAt "$url" -c "SELECT 1" >/dev/null || { echo "FAIL: the cluster does not answer" >&2; exit 1; }
kill -KILL "$owner_pid"
for _ in $(seq 50); do
  if ! pgrep -f "postgres -D $tmp/pg/" >/dev/null && [ ! -e "$tmp/pg" ]; then
    echo "ok: stopped and removed after its owner was killed"
    exit 0
  fi
  sleep 0.2
done
echo "FAIL: the cluster outlived its owner by 10 s" >&2
exit 1
