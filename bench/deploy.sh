#!/usr/bin/env bash
# Deploy benchmark: wall time from the start of `git push` until the new
# release answers through the front nginx, for first deploys, for N
# code-only redeploys and for rebuilds of the virtualenv with a warm cache,
# of examples/hello with a worker process added (Procfile "web:" gunicorn
# and "worker:" a Python loop that sets Django up, like a Celery or RQ
# worker without a broker), next to bench/plain-deploy.sh doing the same
# steps by hand on the same machine. Every line of each push's output is
# timestamped when it arrives, for the per-step table and the time to the
# first useful line.
#
#   make bench            # setup + build, then this script
#   bench/deploy.sh       # from the repo root, after `make build`; as root
#
# Environment: BENCH_N (redeploys per tool, default 10), BENCH_COLD (first
# deploys per tool, each of a new app with an empty pip cache, alternating
# which tool goes first; default 3), BENCH_WARM (deploys per tool that
# change requirements.txt, so a new virtualenv is built from the tool's
# warm local cache; default 3), BENCH_DOC (where the
# results go, default docs/benchmarks.md; "-" prints only), BENCH_LOGS (a dir
# to copy the run's logs and raw timings to before the temp dir is removed),
# BENCH_BIN (the conductor binary, default bin/conductor), BENCH_PIKU (a
# piku set up beside it, see below; none by default).
#
# BENCH_PIKU is a command for a piku installed on this machine (how:
# docs/benchmarks.md, "piku beside it"): `$BENCH_PIKU first NAME` pushes
# examples/hello to piku as a new app NAME and prints, as its last line,
# the seconds from the start of its `git push` until the app answered
# through piku's nginx; `$BENCH_PIKU destroy NAME` removes the app. Each
# first-deploy round then deploys a new piku app too, the three tools
# taking turns at going first.
#
# Everything runs in a fresh temp dir under /tmp on loopback ports that are
# free at the time; the server, its circusd/nginx/gunicorns, the plain
# script's nginx/gunicorns, the app's unix user and the dir are removed on
# exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

N=${BENCH_N:-10}
COLD=${BENCH_COLD:-3}
WARM=${BENCH_WARM:-3}
DOC=${BENCH_DOC:-docs/benchmarks.md}
BIN=${BENCH_BIN:-$ROOT/bin/conductor}

die() { echo "bench: $*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root: Conductor creates a unix user per app"
[ -x "$BIN" ] || die "$BIN is missing: run make build"
BIN_VERSION=$("$BIN" version 2>/dev/null || echo unknown)
for t in git ssh ssh-keygen curl ss /usr/sbin/nginx /usr/bin/python3 /opt/conductor/circus/bin/circusd; do
  command -v "$t" >/dev/null || die "$t is missing: run make setup"
done

DIR=$(mktemp -d /tmp/conductor-bench.XXXXXX)
chmod 711 "$DIR" # app users must traverse it to reach their releases
mkdir -p "$DIR/logs"
SERVE_PID=""
APP=""
COLD_APPS=() # the extra apps of the first-deploy runs
PIKU=${BENCH_PIKU:-}
PIKU_APPS=() # the piku apps of the first-deploy runs
SERVE_MARK="" PLAIN_MARK=""

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  if [ -n "$SERVE_PID" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -TERM "$SERVE_PID"
    for _ in $(seq 1 600); do kill -0 "$SERVE_PID" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$SERVE_PID" 2>/dev/null && { say "bench: conductor serve ignored SIGTERM for 60s; killing it"; kill -KILL "$SERVE_PID"; }
    wait "$SERVE_PID" 2>/dev/null
  fi
  # circusd, nginx and the apps outlive serve (a restart of Conductor
  # never stops an app).
  [ -d "$DIR/data/circus" ] && "$BIN" stop-all --data "$DIR/data" >/dev/null 2>&1
  "$ROOT/bench/plain-deploy.sh" teardown "$DIR/plain" 2>/dev/null
  if [ -n "${BENCH_LOGS:-}" ]; then
    mkdir -p "$BENCH_LOGS" && cp -r "$DIR/logs" "$DIR/serve.log" "$DIR/results.tsv" "$BENCH_LOGS"/ 2>/dev/null
    cp "$DIR/plain/steps.log" "$BENCH_LOGS/plain-steps.log" 2>/dev/null
    cp -r "$DIR/plain/logs" "$BENCH_LOGS/plain-logs" 2>/dev/null
    cp "$DIR/data/circus/circusd.log" "$BENCH_LOGS/" 2>/dev/null
    echo "$SERVE_MARK $PLAIN_MARK" >"$BENCH_LOGS/marks" 2>/dev/null
  fi
  # Anything still running from the temp dir was started by this run.
  for pid in $(pgrep -f -- "$DIR"); do
    say "bench: leftover process $(ps -o pid=,args= -p "$pid" 2>/dev/null); stopping it"
    kill -TERM "$pid" 2>/dev/null
  done
  sleep 0.5
  for pid in $(pgrep -f -- "$DIR"); do kill -KILL "$pid" 2>/dev/null; done
  # The unix user Conductor created for this run's app.
  for app in "$APP" "${COLD_APPS[@]}"; do
    if [ -n "$app" ] && [ "$(getent passwd "$app" | cut -d: -f5)" = "conductor app" ]; then
      userdel "$app" 2>/dev/null
    fi
  done
  for app in "${PIKU_APPS[@]}"; do
    "$PIKU" destroy "$app" >/dev/null 2>&1 || say "bench: could not destroy piku app $app"
  done
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail_logs() {
  say "---- last lines of $1"
  tail -n 40 "$1" >&2 || true
  [ -f "$DIR/serve.log" ] && { say "---- last lines of the server log"; tail -n 40 "$DIR/serve.log" >&2; }
  die "$2"
}

# --- Conductor --------------------------------------------------------------
SSH_PORT=$(free_port)
HTTP_PORT=$(free_port)
RANGE=$(pick_port_range 110) # 100 for conductor's apps, 2 for the plain script
CONDUCTOR_RANGE="$RANGE-$((RANGE + 99))"
APP=bench-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
HOST=$APP.localhost
PLAIN_HOST=$HOST

ssh-keygen -q -t ed25519 -N '' -C bench -f "$DIR/key"
"$BIN" init --data "$DIR/data" --admin-key "$DIR/key.pub" >"$DIR/logs/init.log" 2>&1 ||
  fail_logs "$DIR/logs/init.log" "conductor init failed"
"$BIN" serve --data "$DIR/data" --ssh-addr "127.0.0.1:$SSH_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  --port-range "$CONDUCTOR_RANGE" --log-level debug >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
wait_tcp 127.0.0.1 "$SSH_PORT" 60 "$SERVE_PID" && wait_tcp 127.0.0.1 "$HTTP_PORT" 60 "$SERVE_PID" ||
  fail_logs "$DIR/serve.log" "conductor serve did not listen on 127.0.0.1:$SSH_PORT and :$HTTP_PORT"
say "bench: conductor serve (pid $SERVE_PID) ssh 127.0.0.1:$SSH_PORT http 127.0.0.1:$HTTP_PORT apps $CONDUCTOR_RANGE; app $APP"

# --- plain script -----------------------------------------------------------
PLAIN_HTTP_PORT=$(free_port)
"$ROOT/bench/plain-deploy.sh" setup "$DIR/plain" "$APP" "$PLAIN_HTTP_PORT" $((RANGE + 100)) $((RANGE + 101)) \
  >"$DIR/logs/plain-setup.log" 2>&1 || fail_logs "$DIR/logs/plain-setup.log" "plain-deploy.sh setup failed"
say "bench: plain nginx on 127.0.0.1:$PLAIN_HTTP_PORT, gunicorn ports $((RANGE + 100))/$((RANGE + 101))"

# --- the app ----------------------------------------------------------------
WORK=$DIR/work
cp -r examples/hello "$WORK"
# The worker: imports the project like a Celery or RQ worker would, then
# beats; it stops at SIGTERM.
cat >"$WORK/worker.py" <<'EOF'
import signal, sys, time

import django

django.setup()
from greetings.version import VERSION  # noqa: E402

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("worker", VERSION, "started", flush=True)
while True:
    time.sleep(1)
EOF
printf 'web: gunicorn hello.wsgi --log-file -\nworker: python worker.py\n' >"$WORK/Procfile"
export GIT_SSH_COMMAND="ssh -p $SSH_PORT -i $DIR/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
export GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
git -C "$WORK" init -q -b main

# commit_version V: a code-only change, committed (not timed).
commit_version() {
  printf '# The deployed version marker. Tests rewrite this line (e.g. with sed) to v2.\nVERSION = "%s"\n' "$1" \
    >"$WORK/greetings/version.py"
  git -C "$WORK" add -A
  git -C "$WORK" commit -q -m "version $1"
}

# wait_marker PORT V HOST: poll the front nginx until the page shows version V.
wait_marker() {
  local body deadline=$((SECONDS + 120))
  while :; do
    body=$(curl -s --max-time 5 -H "Host: $3" "http://127.0.0.1:$1/" || true)
    [[ $body == *"Hello from Conductor $2</h1>"* ]] && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.01
  done
}

RESULTS=$DIR/results.tsv # tool kind run t_start t_returned t_marker release
: >"$RESULTS"

# stamp: each line of stdin prefixed with the time it was read.
stamp() {
  local line
  while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "$line"; done
}

conductor_deploy() { # KIND RUN VERSION
  local log=$DIR/logs/push-$1-$2.log t0 t1 t2 job
  wait_quiet
  t0=$EPOCHREALTIME
  echo "$t0 START" >"$log"
  git -C "$WORK" push "ssh://git@127.0.0.1:$SSH_PORT/$APP" main 2>&1 | stamp >>"$log" || fail_logs "$log" "git push ($1 $2) failed"
  t1=$EPOCHREALTIME
  wait_marker "$HTTP_PORT" "$3" "$HOST" || fail_logs "$log" "conductor: $3 never appeared on http://$HOST:$HTTP_PORT/"
  t2=$EPOCHREALTIME
  job=$(sed -n 's/.*-----> Deploying .* as \([^ ]*\).*/\1/p' "$log" | head -n 1)
  printf 'conductor\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$t0" "$t1" "$t2" "${job:--}" >>"$RESULTS"
  say "$(printf 'bench: conductor %-8s #%-2s %6.2f s (push returned after %.2f s)' "$1" "$2" \
    "$(awk -v a="$t0" -v b="$t2" 'BEGIN{print b-a}')" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")"
}

plain_deploy() { # KIND RUN VERSION
  local log=$DIR/logs/plain-$1-$2.log t0 t1 t2 rel rev
  rev=$(git -C "$WORK" rev-parse HEAD)
  wait_quiet
  t0=$EPOCHREALTIME
  "$ROOT/bench/plain-deploy.sh" deploy "$DIR/plain" "$WORK" "$rev" >"$log" 2>&1 || fail_logs "$log" "plain-deploy.sh ($1 $2) failed"
  t1=$EPOCHREALTIME
  wait_marker "$PLAIN_HTTP_PORT" "$3" "$PLAIN_HOST" || fail_logs "$log" "plain: $3 never appeared on http://$PLAIN_HOST:$PLAIN_HTTP_PORT/"
  t2=$EPOCHREALTIME
  rel=$(sed -n 's/.*(release \([^ ]*\)).*/\1/p' "$log" | tail -n 1)
  printf 'plain\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$t0" "$t1" "$t2" "${rel:--}" >>"$RESULTS"
  say "$(printf 'bench: plain     %-8s #%-2s %6.2f s (script returned after %.2f s)' "$1" "$2" \
    "$(awk -v a="$t0" -v b="$t2" 'BEGIN{print b-a}')" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')")"
}

piku_deploy() { # KIND RUN
  local log=$DIR/logs/piku-$1-$2.log name=$APP-p$2 t0 secs
  PIKU_APPS+=("$name")
  wait_quiet
  t0=$EPOCHREALTIME
  "$PIKU" first "$name" >"$log" 2>&1 || fail_logs "$log" "piku ($1 $2) failed"
  secs=$(tail -n 1 "$log")
  [[ $secs =~ ^[0-9]+(\.[0-9]+)?$ ]] || fail_logs "$log" "piku ($1 $2) printed no time"
  # The command times its own push: its local commit is left out.
  printf 'piku\t%s\t%s\t%s\t%s\t%s\t-\n' "$1" "$2" "$t0" "$t0" "$(awk -v a="$t0" -v b="$secs" 'BEGIN{printf "%.6f", a+b}')" >>"$RESULTS"
  say "$(printf 'bench: piku      %-8s #%-2s %6.2f s' "$1" "$2" "$secs")"
}

# First deploys: a new app, a new virtualenv (pip install of Django and
# gunicorn from PyPI, with an empty pip cache for both tools). Each run after
# the first is a new Conductor app and a rebuilt plain virtualenv; the runs
# rotate which tool goes first, since the network and PyPI's caches
# favour whoever downloads later. Conductor's first one fills the host's
# seed of compiled modules in the background; the next ones link them.
commit_version v1
FIRST_APP=$APP
for i in $(seq 1 "$COLD"); do
  if [ "$i" -gt 1 ]; then
    APP=$FIRST_APP-c$i HOST=$FIRST_APP-c$i.localhost
    COLD_APPS+=("$APP")
    rm -rf "$DIR/plain/venv" "$DIR/plain/pip-cache"
  fi
  # Each tool goes first, second (and third) in turn.
  order=(conductor plain)
  [ -n "$PIKU" ] && order+=(piku)
  for ((k = 0; k < ${#order[@]}; k++)); do
    case ${order[$(((i - 1 + k) % ${#order[@]}))]} in
    conductor) conductor_deploy first "$i" v1 ;;
    plain) plain_deploy first "$i" v1 ;;
    piku) piku_deploy first "$i" ;;
    esac
  done
done
APP=$FIRST_APP HOST=$FIRST_APP.localhost

# Code-only redeploys, alternating the two tools so that both see the same
# machine load. Step lines logged from here on are the redeploys'.
SERVE_MARK=$(wc -l <"$DIR/serve.log")
PLAIN_MARK=$(wc -l <"$DIR/plain/steps.log")
for i in $(seq 1 "$N"); do
  commit_version "v$((i + 1))"
  conductor_deploy redeploy "$i" "v$((i + 1))"
  plain_deploy redeploy "$i" "v$((i + 1))"
done

# Rebuilds with a warm cache: requirements.txt changes (a comment), so
# Conductor builds a new virtualenv with uv from the app's own cache, and
# the plain script a new one with pip from its pip cache.
for i in $(seq 1 "$WARM"); do
  echo "# rebuild $i" >>"$WORK/requirements.txt"
  commit_version "w$i"
  rm -rf "$DIR/plain/venv" # keeps $DIR/plain/pip-cache
  conductor_deploy warm "$i" "w$i"
  plain_deploy warm "$i" "w$i"
done

/usr/bin/python3 bench/report.py --results "$RESULTS" --push-logs "$DIR/logs" \
  --serve-log "$DIR/serve.log" --serve-mark "$SERVE_MARK" \
  --plain-steps "$DIR/plain/steps.log" --plain-mark "$PLAIN_MARK" \
  --binary "$BIN_VERSION" --doc "$DOC"
