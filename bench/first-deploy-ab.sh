#!/usr/bin/env bash
# First deploys, two Conductor binaries side by side: an instance of each
# (its own data dir, ports and nginx), and BENCH_N (5) rounds that push a
# new app to each, alternating which goes first, timed from the start of
# `git push` until the app answers through that instance's nginx. Each
# instance first deploys one app untimed, and the script waits until the
# new binary's seed of compiled modules is filled (docs/architecture.md,
# "uv's cache"), so the timed runs are first deploys on a host where
# another app installed the same packages. Both download from the index
# (each app's cache is its own). On a shared machine, the two columns of
# one run compare; separate runs do not.
#
#   bench/first-deploy-ab.sh OLD_BINARY NEW_BINARY     # as root
#
# Prints one line per deploy and the medians; BENCH_LOGS=DIR keeps the
# timestamped push outputs and the servers' logs.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh
[ $# = 2 ] || { echo "usage: $0 OLD_BINARY NEW_BINARY" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "run as root: Conductor creates a unix user per app" >&2; exit 1; }
N=${BENCH_N:-5}
DIR=$(mktemp -d /tmp/conductor-ab.XXXXXX)
chmod 711 "$DIR" # app users must traverse it to reach their releases
mkdir -p "$DIR/logs"
declare -A PID=() SSHP=() HTTPP=()
APPS=()
cleanup() {
  local rc=$? k a
  trap - EXIT INT TERM
  set +e
  for k in "${!PID[@]}"; do
    kill -TERM "${PID[$k]}" 2>/dev/null && wait "${PID[$k]}" 2>/dev/null
    "$DIR/bin-$k" stop-all --data "$DIR/$k" >/dev/null 2>&1
  done
  for a in "${APPS[@]}"; do
    [ "$(getent passwd "$a" | cut -d: -f5)" = "conductor app" ] && userdel "$a"
  done
  [ -n "${BENCH_LOGS:-}" ] && mkdir -p "$BENCH_LOGS" && cp -r "$DIR/logs/." "$BENCH_LOGS"/
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ssh-keygen -q -t ed25519 -N '' -C ab -f "$DIR/key"
RANGE=$(pick_port_range 100)
off=0
for k in old new; do
  if [ $k = old ]; then cp "$1" "$DIR/bin-old"; else cp "$2" "$DIR/bin-new"; fi
  SSHP[$k]=$(free_port)
  HTTPP[$k]=$(free_port)
  "$DIR/bin-$k" init --data "$DIR/$k" --admin-key "$DIR/key.pub" >"$DIR/logs/init-$k.log" 2>&1
  "$DIR/bin-$k" serve --data "$DIR/$k" --ssh-addr "127.0.0.1:${SSHP[$k]}" --http-addr "127.0.0.1:${HTTPP[$k]}" \
    --port-range "$((RANGE + off))-$((RANGE + off + 49))" --log-level debug >"$DIR/logs/serve-$k.log" 2>&1 &
  PID[$k]=$!
  off=50
  wait_tcp 127.0.0.1 "${SSHP[$k]}" 60 "${PID[$k]}" && wait_tcp 127.0.0.1 "${HTTPP[$k]}" 60 "${PID[$k]}" ||
    { tail -n 20 "$DIR/logs/serve-$k.log" >&2; exit 1; }
done

# The app of bench/deploy.sh: examples/hello with a worker.
WORK=$DIR/work
cp -r examples/hello "$WORK"
cat >"$WORK/worker.py" <<'PY'
import signal, sys, time

import django

django.setup()
from greetings.version import VERSION  # noqa: E402

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print("worker", VERSION, "started", flush=True)
while True:
    time.sleep(1)
PY
printf 'web: gunicorn hello.wsgi --log-file -\nworker: python worker.py\n' >"$WORK/Procfile"
export GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
git -C "$WORK" init -q -b main
git -C "$WORK" add -A
git -C "$WORK" commit -q -m v1
TAG=ab$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n')

declare -A TIMES=([old]="" [new]="")
deploy() { # INSTANCE APP
  local k=$1 app=$2 t0 t1 body log=$DIR/logs/push-$2.log deadline=$((SECONDS + 300))
  APPS+=("$app")
  t0=$EPOCHREALTIME
  echo "$t0 START" >"$log"
  GIT_SSH_COMMAND="ssh -p ${SSHP[$k]} -i $DIR/key -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR" \
    git -C "$WORK" push "ssh://git@127.0.0.1:${SSHP[$k]}/$app" main 2>&1 |
    while IFS= read -r l; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done >>"$log"
  until body=$(curl -s --max-time 5 -H "Host: $app.localhost" "http://127.0.0.1:${HTTPP[$k]}/") &&
    [[ $body == *"Hello from Conductor"* ]]; do
    [ "$SECONDS" -lt "$deadline" ] || { tail -n 30 "$log" >&2; echo "$app never answered" >&2; exit 1; }
    sleep 0.01
  done
  t1=$EPOCHREALTIME
  [ "${app##*[on]}" = 0 ] && return # the untimed first app
  TIMES[$k]+=" $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.2f", b-a}')"
  printf '%s %s %.2f s\n' "$k" "$app" "$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
}
deploy old "$TAG-o0"
deploy new "$TAG-n0"
# The new binary fills its seed after its first virtualenv, in the
# background; an old one has none and is not waited for.
for _ in $(seq 1 1500); do
  grep -q "uv seed: added" "$DIR/logs/serve-new.log" && break
  sleep 0.2
done
grep -q "uv seed: added" "$DIR/logs/serve-new.log" || echo "bench: the new binary's seed was not filled in 5 min" >&2
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
for i in $(seq 1 "$N"); do
  if [ $((i % 2)) = 1 ]; then
    deploy old "$TAG-o$i"
    deploy new "$TAG-n$i"
  else
    deploy new "$TAG-n$i"
    deploy old "$TAG-o$i"
  fi
done
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
for k in old new; do
  # shellcheck disable=SC2086
  printf '%s median %s s of:%s\n' "$k" "$(printf '%s\n' ${TIMES[$k]} | sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}')" "${TIMES[$k]}"
done
