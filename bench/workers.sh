#!/usr/bin/env bash
# Worker throughput benchmark: how many apps a conductor deploys per minute
# with 1, 2 and 4 builder workers (`conductor worker`, each its own host with
# its own data dir, circusd and nginx, one job at a time), different apps
# pushed in parallel.
#
#   bench/workers.sh      # from the repo root, after `make build`; as root
#
# Environment: BENCH_APPS (apps per run, default 8), BENCH_ROUNDS (timed
# rounds of parallel redeploys per worker count, default 3), BENCH_WORKERS
# (default "1 2 4"), BENCH_BIN (default bin/conductor).
#
# Per worker count: BENCH_APPS new apps are placed round-robin on the
# workers and deployed once (cold: a virtualenv each, pip from PyPI, so that
# number says more about the network than about Conductor), then each round
# pushes a code-only change to every app at once and times until every push
# has returned (a push returns when its deploy is live). Everything runs in
# a temp dir on loopback ports and is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

APPS=${BENCH_APPS:-8}
ROUNDS=${BENCH_ROUNDS:-3}
WORKER_COUNTS=${BENCH_WORKERS:-1 2 4}
BIN=${BENCH_BIN:-$ROOT/bin/conductor}

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root: Conductor creates a unix user per app"
[ -x "$BIN" ] || die "$BIN is missing: run make build"

DIR=$(mktemp -d /tmp/conductor-bench-workers.XXXXXX)
chmod 711 "$DIR"
mkdir -p "$DIR/logs"
SERVE_PID=""
WORKER_PIDS=()
CREATED_APPS=()

stop_pid() { # PID: SIGTERM, wait up to 60 s, then SIGKILL
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 600); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid app
  trap - EXIT INT TERM
  set +e
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid"; done
  [ -n "$SERVE_PID" ] && stop_pid "$SERVE_PID"
  # circusd, nginx and the apps outlive serve and the workers.
  for d in "$DIR"/*/; do [ -d "$d/circus" ] && "$BIN" stop-all --data "$d" >/dev/null 2>&1; done
  for pid in $(pgrep -f -- "$DIR"); do kill -KILL "$pid" 2>/dev/null; done
  for app in "${CREATED_APPS[@]}"; do
    [ "$(getent passwd "$app" | cut -d: -f5)" = "conductor app" ] && userdel "$app" 2>/dev/null
  done
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

SSH_PORT=$(free_port)
HTTP_PORT=$(free_port)
NATS_PORT=$(free_port)
RANGE=$(pick_port_range 200)
ssh-keygen -q -t ed25519 -N '' -C bench -f "$DIR/key"
"$BIN" init --data "$DIR/data" --admin-key "$DIR/key.pub" >"$DIR/logs/init.log" 2>&1 || die "conductor init failed"
"$BIN" serve --data "$DIR/data" --ssh-addr "127.0.0.1:$SSH_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  --nats-addr "127.0.0.1:$NATS_PORT" --port-range "$RANGE-$((RANGE + 199))" >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
wait_tcp 127.0.0.1 "$SSH_PORT" 60 "$SERVE_PID" || { tail -n 30 "$DIR/serve.log" >&2; die "conductor serve did not start"; }

export GIT_SSH_COMMAND="ssh -p $SSH_PORT -i $DIR/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
export GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
cmd() { $GIT_SSH_COMMAND git@127.0.0.1 "$@"; }

start_worker() { # NAME: prints its pid
  local name=$1
  "$BIN" worker --host "$name" --data "$DIR/$name" --http-addr "127.0.0.1:$(free_port)" --jobs 1 \
    --nats-url "nats://127.0.0.1:$NATS_PORT" --nats-token-file "$DIR/data/nats.token" --nats-ca-file "$DIR/data/nats-tls/ca.pem" >"$DIR/logs/$name.log" 2>&1 &
  echo $!
}

commit_version() { # WORK V
  printf 'VERSION = "%s"\n' "$2" >"$1/greetings/version.py"
  git -C "$1" add -A
  git -C "$1" commit -q -m "version $2"
}

# push_all APPS...: push every app's work tree at once; fails if any push did.
push_all() {
  local app pids=() failed=0 pid
  for app in "$@"; do
    git -C "$DIR/work-$app" push -q "ssh://git@127.0.0.1:$SSH_PORT/$app" main >"$DIR/logs/push-$app.log" 2>&1 &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { for app in "$@"; do tail -n 5 "$DIR/logs/push-$app.log" >&2; done; die "a push failed"; }
}

RESULTS=$DIR/results.tsv # workers kind round seconds apps
: >"$RESULTS"
for W in $WORKER_COUNTS; do
  WORKER_PIDS=()
  names=()
  for i in $(seq 1 "$W"); do
    names+=("w$W-$i")
    WORKER_PIDS+=("$(start_worker "w$W-$i")")
  done
  for _ in $(seq 1 300); do
    live=$(cmd hosts --json | /usr/bin/python3 -c 'import json,sys; print(len([h for h in json.load(sys.stdin) if h["name"].startswith(sys.argv[1]) and h["state"] == "up"]))' "w$W-")
    [ "$live" = "$W" ] && break
    sleep 0.2
  done
  [ "$live" = "$W" ] || die "$W workers did not all announce themselves"
  apps=()
  for i in $(seq 1 "$APPS"); do
    app="b$W-$i"
    apps+=("$app")
    CREATED_APPS+=("$app")
    cmd apps:create "$app" --host "${names[$(((i - 1) % W))]}" >/dev/null
    cp -r examples/hello "$DIR/work-$app"
    git -C "$DIR/work-$app" init -q -b main
    commit_version "$DIR/work-$app" v1
  done
  t0=$EPOCHREALTIME
  push_all "${apps[@]}"
  cold=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
  printf '%s\tcold\t0\t%s\t%s\n' "$W" "$cold" "$APPS" >>"$RESULTS"
  say "bench: $W worker(s): first deploy of $APPS apps in $cold s"
  for r in $(seq 1 "$ROUNDS"); do
    for app in "${apps[@]}"; do commit_version "$DIR/work-$app" "v$((r + 1))"; done
    t0=$EPOCHREALTIME
    push_all "${apps[@]}"
    s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
    printf '%s\twarm\t%s\t%s\t%s\n' "$W" "$r" "$s" "$APPS" >>"$RESULTS"
    say "bench: $W worker(s): redeploy round $r of $APPS apps in $s s"
  done
  for pid in "${WORKER_PIDS[@]}"; do stop_pid "$pid"; done
  WORKER_PIDS=()
  # The next round starts from nothing: this round's apps, circusd and nginx
  # (which outlive their worker) stop too.
  for d in "$DIR"/w"$W"-*/; do "$BIN" stop-all --data "$d" >/dev/null 2>&1; done
done

/usr/bin/python3 - "$RESULTS" "$APPS" <<'EOF'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
apps = int(sys.argv[2])
print("| workers | first deploys (s) | apps/min | code-only redeploys, median (s) | apps/min | speed-up |")
print("|---|---|---|---|---|---|")
base = None
for w in sorted({int(r[0]) for r in rows}):
    cold = [float(r[3]) for r in rows if int(r[0]) == w and r[1] == "cold"][0]
    warm = statistics.median(float(r[3]) for r in rows if int(r[0]) == w and r[1] == "warm")
    base = base or warm
    print(f"| {w} | {cold:.1f} | {apps * 60 / cold:.1f} | {warm:.1f} | {apps * 60 / warm:.1f} | {base / warm:.2f}x |")
EOF
