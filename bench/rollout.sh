#!/usr/bin/env bash
# Zero-downtime benchmark (issue 5): failed requests across code-only deploys
# and rollbacks under steady HTTP load, and how long each deploy and rollback
# takes until the new version answers through the front nginx.
#
#   bench/rollout.sh      # from the repo root, after `make build`; as root
#
# It pushes examples/hello once, starts bench/loadgen against the app through
# the front nginx, then makes BENCH_DEPLOYS code-only deploys (greetings/
# version.py changes, commit, `git push`), then BENCH_ROLLBACKS rollbacks
# (`ssh … rollback <app> v<N>`, alternating between the two releases before
# the last push), stops the load and reports:
#
#   - requests sent by the load and how many failed (status != 200 or a
#     transport error; target 0), and how many distinct releases
#     (X-Conductor-Release) the load was served by;
#   - each redeploy: start of `git push` -> page shows the new VERSION
#     (target <= 3 s);
#   - each rollback: start of the ssh command -> page shows the target
#     release's VERSION (target <= 2 s).
#
# Environment: BENCH_DEPLOYS (default 20), BENCH_ROLLBACKS (default 5),
# BENCH_WORKERS (load workers, default 4), BENCH_RATE (load requests/s over
# all workers, default 0 = as fast as the app answers), BENCH_PATH (default
# /health), BENCH_DOC (default docs/benchmarks.md; "-" prints only),
# BENCH_LOGS (a dir to copy the logs and raw data to before the temp dir is
# removed), BENCH_BIN (default bin/conductor), BENCH_BUDGET (seconds the
# deploy/rollback phase may take before the run is abandoned, default 480).
#
# Everything runs in a fresh temp dir under /tmp, on free loopback ports and
# an app port range no other Conductor on the machine uses. The load
# generator, the server (and with it circusd, nginx and the gunicorns), the
# app's unix user and the temp dir are removed on exit, whatever happens.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

DEPLOYS=${BENCH_DEPLOYS:-20}
ROLLBACKS=${BENCH_ROLLBACKS:-5}
WORKERS=${BENCH_WORKERS:-4}
RATE=${BENCH_RATE:-0}
LOAD_PATH=${BENCH_PATH:-/health}
DOC=${BENCH_DOC:-docs/benchmarks.md}
BIN=${BENCH_BIN:-$ROOT/bin/conductor}
BUDGET=${BENCH_BUDGET:-480}

die() { echo "rollout: $*" >&2; exit 1; }
say() { printf '%s\n' "$*" >&2; }

[ "$(id -u)" = 0 ] || die "run as root: Conductor creates a unix user per app"
[ -x "$BIN" ] || die "$BIN is missing: run make build"
[ "$DEPLOYS" -ge 2 ] || die "BENCH_DEPLOYS must be at least 2 (rollbacks go to the two releases before the last)"
BIN_VERSION=$("$BIN" version 2>/dev/null || echo unknown)
for t in go git ssh ssh-keygen curl ss pgrep timeout /usr/sbin/nginx /usr/bin/python3 /opt/conductor/circus/bin/circusd; do
  command -v "$t" >/dev/null || die "$t is missing: run make setup"
done

DIR=$(mktemp -d /tmp/conductor-rollout.XXXXXX)
chmod 711 "$DIR" # app users must traverse it to reach their releases
mkdir -p "$DIR/logs"
SERVE_PID="" LOAD_PID="" APP="" NGINX_PIDS=""

# stop_child PID SECONDS: SIGTERM a child of this shell, wait, then SIGKILL.
stop_child() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for i in $(seq 1 $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    say "rollout: pid $pid ignored SIGTERM for $2 s; killing it"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
}

# starttime PID: the process's start time (field 22 of /proc/PID/stat), to
# tell it from a later process that got the same pid.
starttime() { local s; s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1; s=${s##*) }; echo "$s" | cut -d' ' -f20; }

# nginx_snapshot: our nginx master and its workers as "pid:starttime"; the
# workers' command lines name no path, so pgrep -f cannot find them.
nginx_snapshot() {
  local master pid t
  master=$(cat "$DIR/data/nginx/nginx.pid" 2>/dev/null) || return 0
  tr '\0' ' ' <"/proc/$master/cmdline" 2>/dev/null | grep -qF -- "$DIR/" || return 0
  for pid in "$master" $(pgrep -P "$master"); do
    t=$(starttime "$pid") && printf '%s:%s ' "$pid" "$t"
  done
}

# leftovers: processes this run started that are still running: anything
# whose command line names the temp dir, anything of the app's unix user,
# and our nginx's processes.
leftovers() {
  local e
  {
    pgrep -f -- "$DIR"
    [ -n "$APP" ] && [ "$(getent passwd "$APP" | cut -d: -f5)" = "conductor app" ] && pgrep -u "$APP"
    for e in $NGINX_PIDS; do
      [ "$(starttime "${e%%:*}")" = "${e#*:}" ] && running "${e%%:*}" && echo "${e%%:*}"
    done
  } 2>/dev/null | sort -un | grep -vx "$$" || true
}

cleanup() {
  local rc=$? pid left
  trap - EXIT INT TERM
  set +e
  [ -n "$LOAD_PID" ] && stop_child "$LOAD_PID" 15
  NGINX_PIDS=$(nginx_snapshot)
  [ -n "$SERVE_PID" ] && stop_child "$SERVE_PID" 60
  # circusd (and with it the app's gunicorns) and nginx outlive serve
  "$BIN" stop-all --data "$DIR/data" >/dev/null 2>&1
  if [ -n "${BENCH_LOGS:-}" ]; then
    mkdir -p "$BENCH_LOGS" && cp -r "$DIR/logs" "$DIR/serve.log" "$DIR"/*.tsv "$DIR"/*.json "$BENCH_LOGS"/ 2>/dev/null
    # circusd's log, and the app's process logs: what a slow start or stop did
    mkdir -p "$BENCH_LOGS/app-logs" && cp "$DIR/data/circus/circusd.log" "$BENCH_LOGS"/ 2>/dev/null
    cp -r "$DIR"/data/srv/projects/*/logs/. "$BENCH_LOGS/app-logs"/ 2>/dev/null
  fi
  left=$(leftovers)
  if [ -n "$left" ]; then
    for pid in $left; do
      say "rollout: leftover process $(ps -o pid=,user=,args= -p "$pid" 2>/dev/null); stopping it"
      kill -TERM "$pid" 2>/dev/null
    done
    sleep 1
    for pid in $(leftovers); do kill -KILL "$pid" 2>/dev/null; done
    sleep 0.2
  fi
  # The unix user Conductor created for this run's app.
  if [ -n "$APP" ] && [ "$(getent passwd "$APP" | cut -d: -f5)" = "conductor app" ]; then
    userdel "$APP" 2>/dev/null || say "rollout: userdel $APP failed"
  fi
  rm -rf "$DIR"
  left=$(leftovers)
  [ -z "$left" ] || say "rollout: WARNING: still running after clean-up: $left"
  [ ! -e "$DIR" ] || say "rollout: WARNING: $DIR was not removed"
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

# A port range for the app: free now, and not inside the --port-range of any
# other `conductor serve` on this machine (that one may bind any port of its
# range later).
other_ranges=$(ps -eo args= | grep -oE -- '--port-range[= ][0-9]+-[0-9]+' | grep -oE '[0-9]+-[0-9]+' || true)
RANGE=""
for _ in $(seq 1 50); do
  base=$(pick_port_range 100) || break
  clash=""
  for r in $other_ranges; do
    if [ "$base" -le "${r#*-}" ] && [ $((base + 99)) -ge "${r%-*}" ]; then clash=$r; fi
  done
  [ -z "$clash" ] && { RANGE=$base; break; }
done
[ -n "$RANGE" ] || die "no free port range of 100 ports"
PORT_RANGE="$RANGE-$((RANGE + 99))"

# --- the load generator ------------------------------------------------------
go build -o "$DIR/loadgen" ./bench/loadgen >"$DIR/logs/go-build.log" 2>&1 ||
  fail_logs "$DIR/logs/go-build.log" "go build ./bench/loadgen failed"

# --- Conductor -----------------------------------------------------------------
SSH_PORT=$(free_port)
HTTP_PORT=$(free_port)
APP=rollout-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
HOST=$APP.localhost
ssh-keygen -q -t ed25519 -N '' -C rollout-bench -f "$DIR/key"
"$BIN" init --data "$DIR/data" --admin-key "$DIR/key.pub" >"$DIR/logs/init.log" 2>&1 ||
  fail_logs "$DIR/logs/init.log" "conductor init failed"
"$BIN" serve --data "$DIR/data" --ssh-addr "127.0.0.1:$SSH_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
  --port-range "$PORT_RANGE" --log-level debug >"$DIR/serve.log" 2>&1 &
SERVE_PID=$!
wait_tcp 127.0.0.1 "$SSH_PORT" 60 "$SERVE_PID" && wait_tcp 127.0.0.1 "$HTTP_PORT" 60 "$SERVE_PID" ||
  fail_logs "$DIR/serve.log" "conductor serve did not listen on 127.0.0.1:$SSH_PORT and :$HTTP_PORT"
say "rollout: conductor serve (pid $SERVE_PID) ssh 127.0.0.1:$SSH_PORT http 127.0.0.1:$HTTP_PORT apps $PORT_RANGE; app $APP"

SSH_OPTS=(-p "$SSH_PORT" -i "$DIR/key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
export GIT_SSH_COMMAND="ssh ${SSH_OPTS[*]}"
export GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com
ssh_cmd() { ssh "${SSH_OPTS[@]}" git@127.0.0.1 "$@"; }

WORK=$DIR/work
cp -r examples/hello "$WORK"
git -C "$WORK" init -q -b main

# commit_version V: a code-only change, committed (not timed).
commit_version() {
  printf '# The deployed version marker. Tests rewrite this line (e.g. with sed) to v2.\nVERSION = "%s"\n' "$1" \
    >"$WORK/greetings/version.py"
  git -C "$WORK" add -A
  git -C "$WORK" commit -q -m "version $1"
}

# wait_marker V: poll the front nginx every 10 ms until the page shows V.
wait_marker() {
  local body deadline=$((SECONDS + 60))
  while :; do
    body=$(curl -s --max-time 5 -H "Host: $HOST" "http://127.0.0.1:$HTTP_PORT/" || true)
    [[ $body == *"Hello from Conductor $1</h1>"* ]] && return 0
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.01
  done
}

secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

# Raw results: kind run version t_start t_returned t_marker exit_code target release_id
RESULTS=$DIR/results.tsv
: >"$RESULTS"
FAILED_OPS=0

# timed KIND RUN VERSION TARGET LOG CMD...: run CMD (a deploy of release
# TARGET, "-" if unknown), then wait until the page shows VERSION.
timed() {
  local kind=$1 run=$2 version=$3 target=$4 log=$5 t0 t1 t2 rc=0 id
  shift 5
  [ "$SECONDS" -lt "$BUDGET" ] || die "over the time budget (BENCH_BUDGET=$BUDGET s) before $kind $run"
  t0=$EPOCHREALTIME
  timeout 120 "$@" >"$log" 2>&1 || rc=$?
  t1=$EPOCHREALTIME
  if [ "$rc" = 0 ]; then
    wait_marker "$version" || fail_logs "$log" "$kind $run: $version never appeared on http://$HOST:$HTTP_PORT/"
    t2=$EPOCHREALTIME
    say "$(printf 'rollout: %-8s #%-2s -> %-4s %6.2f s (command returned after %.2f s)' "$kind" "$run" "$version" \
      "$(secs "$t0" "$t2")" "$(secs "$t0" "$t1")")"
  else
    t2=-
    FAILED_OPS=$((FAILED_OPS + 1))
    say "rollout: $kind #$run -> $version FAILED (exit $rc); last lines of $log:"
    tail -n 15 "$log" >&2
  fi
  # The new release's id, which nginx sends as X-Conductor-Release: the push
  # says "Deploying <app> (<rev>) as <id>", a rollback "(release <id>)".
  id=$(grep -o '[0-9]\{8\}T[0-9]\{6\}-[0-9a-f]\{8\}' "$log" | head -n 1 || true)
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$kind" "$run" "$version" "$t0" "$t1" "$t2" "$rc" "$target" "${id:--}" >>"$RESULTS"
}

# --- first deploy (not timed for the report: it builds the virtualenv) ------
commit_version v1
say "rollout: first push (virtualenv + pip install)"
timeout 300 git -C "$WORK" push "ssh://git@127.0.0.1:$SSH_PORT/$APP" main >"$DIR/logs/push-0.log" 2>&1 ||
  fail_logs "$DIR/logs/push-0.log" "first push failed"
wait_marker v1 || fail_logs "$DIR/logs/push-0.log" "v1 never appeared on http://$HOST:$HTTP_PORT/"

# --- load ----------------------------------------------------------------------
LOAD_START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
"$DIR/loadgen" -addr "127.0.0.1:$HTTP_PORT" -host "$HOST" -path "$LOAD_PATH" -workers "$WORKERS" \
  -rate "$RATE" -max-duration "$((BUDGET + 120))s" -max-requests 20000000 \
  >"$DIR/load.json" 2>"$DIR/logs/loadgen.log" &
LOAD_PID=$!
sleep 1 # let it warm up: connections open, the serving release sees traffic
kill -0 "$LOAD_PID" 2>/dev/null || fail_logs "$DIR/logs/loadgen.log" "loadgen exited at start"
say "rollout: load running (pid $LOAD_PID): $WORKERS workers, rate ${RATE}/s (0: unlimited), GET $LOAD_PATH"
T_LOAD=$EPOCHREALTIME
SECONDS=0 # the budget counts from here

# --- code-only redeploys -------------------------------------------------------
for i in $(seq 1 "$DEPLOYS"); do
  v=v$((i + 1))
  commit_version "$v"
  timed redeploy "$i" "$v" - "$DIR/logs/push-$i.log" git -C "$WORK" push "ssh://git@127.0.0.1:$SSH_PORT/$APP" main
done

# --- rollbacks -----------------------------------------------------------------
# To the two releases before the newest push, alternating: with the default
# --keep-releases 5 both stay kept (a rollback release shares its target's
# directory). The VERSION each release serves comes from its commit.
ssh_cmd releases "$APP" --json >"$DIR/releases-before.json" 2>"$DIR/logs/releases.log" ||
  fail_logs "$DIR/logs/releases.log" "releases --json failed"
read -r NEWEST < <(/usr/bin/python3 -c 'import json,sys; print(max(r["number"] for r in json.load(open(sys.argv[1]))))' "$DIR/releases-before.json")
rel_version() { # N: the VERSION release vN serves
  local rev
  rev=$(/usr/bin/python3 -c 'import json,sys; print(next(r["rev"] for r in json.load(open(sys.argv[1])) if r["number"] == int(sys.argv[2])))' \
    "$DIR/releases-before.json" "$1")
  git -C "$WORK" show "$rev:greetings/version.py" | sed -n 's/^VERSION = "\(.*\)"$/\1/p'
}
for j in $(seq 1 "$ROLLBACKS"); do
  n=$((NEWEST - 1 - (j + 1) % 2)) # newest-1, newest-2, newest-1, ...
  timed rollback "$j" "$(rel_version "$n")" "v$n" "$DIR/logs/rollback-$j.log" \
    ssh "${SSH_OPTS[@]}" git@127.0.0.1 rollback "$APP" "v$n"
done

# --- stop the load and report --------------------------------------------------
sleep 1 # the last release serves some requests too
kill -TERM "$LOAD_PID"
wait "$LOAD_PID" || fail_logs "$DIR/logs/loadgen.log" "loadgen failed"
LOAD_PID=""
ssh_cmd releases "$APP" --json >"$DIR/releases-after.json" 2>>"$DIR/logs/releases.log" || true
say "rollout: load stopped"

export R_DATE R_COMMIT R_DIRTY R_BIN R_CPU R_NPROC R_MEM R_OS R_KERNEL R_LOAD0 R_LOAD1 R_NGINX R_PY R_GIT
R_DATE=$(date -u '+%Y-%m-%d %H:%M UTC')
R_COMMIT=$(git rev-parse --short HEAD)
R_DIRTY=$(git status --porcelain --untracked-files=no | awk '{print $2}' | paste -sd' ' -)
R_BIN=$BIN_VERSION
R_NPROC=$(nproc)
R_CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
R_MEM=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
R_OS=$(. /etc/os-release && echo "$PRETTY_NAME")
R_KERNEL=$(uname -r)
R_LOAD0=$LOAD_START_LOAD
R_LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
R_NGINX=$(/usr/sbin/nginx -v 2>&1 | sed 's/^nginx version: //')
R_PY=$(/usr/bin/python3 --version 2>&1)
R_GIT=$(git --version)
export R_WORKERS=$WORKERS R_RATE=$RATE R_PATH=$LOAD_PATH R_DEPLOYS=$DEPLOYS R_ROLLBACKS=$ROLLBACKS R_FAILED_OPS=$FAILED_OPS

/usr/bin/python3 - "$RESULTS" "$DIR/load.json" "$DOC" <<'PY'
import json, os, statistics, sys

results, load_path, doc = sys.argv[1:4]
E = os.environ
rows = []
for line in open(results):
    f = line.rstrip("\n").split("\t")
    rows.append({"kind": f[0], "run": int(f[1]), "version": f[2], "t0": float(f[3]), "t1": float(f[4]),
                 "t2": None if f[5] == "-" else float(f[5]), "rc": int(f[6]), "target": f[7], "id": f[8]})
load = json.load(open(load_path))

def done(kind):
    return [r for r in rows if r["kind"] == kind and r["t2"] is not None]

def times(kind):
    return [r["t2"] - r["t0"] for r in done(kind)]

def returned(kind):
    return [r["t1"] - r["t0"] for r in done(kind)]

def first_served(kind):
    """Command start -> the first load request answered by the new release."""
    seen = load.get("release_seen", {})
    return [seen[r["id"]]["first"] - r["t0"] for r in done(kind) if r["id"] in seen]

def mmm(xs):
    if not xs:
        return "—"
    return f"{min(xs):.2f} / **{statistics.median(xs):.2f}** / {max(xs):.2f} s"

def failed(kind):
    return sum(1 for r in rows if r["kind"] == kind and r["rc"] != 0)

def verdict(xs, limit, nfailed):
    if not xs:
        return "**NOT met** (none succeeded)"
    over = sum(1 for x in xs if x > limit)
    med = statistics.median(xs)
    if over == 0 and nfailed == 0:
        return "**met** (every run)"
    parts = [f"median {'met' if med <= limit else 'NOT met'}"]
    if over:
        parts.append(f"{over} of {len(xs)} runs over")
    if nfailed:
        parts.append(f"{nfailed} failed")
    return "**NOT met**: " + ", ".join(parts)

def during(t):
    """What the benchmark was doing at Unix time t."""
    for r in rows:
        end = r["t2"] if r["t2"] is not None else r["t1"]
        if r["t0"] <= t <= end:
            return f"{r['kind']} #{r['run']}"
    return "between deploys"

red, rb = times("redeploy"), times("rollback")
ndeploy = sum(1 for r in rows if r["kind"] == "redeploy")
nroll = sum(1 for r in rows if r["kind"] == "rollback")
want_releases = 1 + len(red) + len(rb)  # the first release, then one per successful deploy and rollback
lat = load.get("latency_ms", {})
fail_ok = load["failed"] == 0
red_ok = bool(red) and max(red) <= 3.0 and failed("redeploy") == 0
rb_ok = bool(rb) and max(rb) <= 2.0 and failed("rollback") == 0

out = []
w = out.append
w("<!-- BEGIN bench/rollout.sh output: regenerated on every run, do not edit by hand -->")
w(f"- **Date:** {E['R_DATE']}")
dirty = ""
if E["R_BIN"].endswith("-dirty") and E["R_DIRTY"]:
    dirty = f" (built from a work tree with uncommitted changes; at run time: {E['R_DIRTY']})"
w(f"- **Commit:** `{E['R_COMMIT']}` (HEAD at run time); the binary says `{E['R_BIN']}`{dirty}")
w(f"- **Machine:** {E['R_NPROC']} × {E['R_CPU']} (`nproc` = {E['R_NPROC']}), {E['R_MEM']} RAM, {E['R_OS']}, kernel {E['R_KERNEL']}")
w(f"- **Software:** {E['R_PY']} (app virtualenvs), nginx/{E['R_NGINX'].split('/')[-1]}, {E['R_GIT']}")
w(f"- **Load average:** {E['R_LOAD0']} when the load started, {E['R_LOAD1']} after the run (other jobs may share this machine)")
w(f"- **Reproduce:** `bench/rollout.sh` after `make build`, as root. This run: `BENCH_DEPLOYS={E['R_DEPLOYS']} BENCH_ROLLBACKS={E['R_ROLLBACKS']} BENCH_WORKERS={E['R_WORKERS']} BENCH_RATE={E['R_RATE']} BENCH_PATH={E['R_PATH']}` (the defaults are 20, 5, 4, 0 = unlimited, /health)")
w("")
rate = "as fast as the app answers" if float(E["R_RATE"]) == 0 else f"at most {E['R_RATE']} requests/s"
w(f"Load: `bench/loadgen`, {load['workers']} workers each with one request in flight ({rate}), "
  f"`GET {E['R_PATH']}` with `Host: <app>.localhost` through the front nginx, keep-alive connections, "
  f"from 1 s after the first deploy until 1 s after the last rollback ({load['duration_s']:.1f} s, "
  f"{load['requests_per_s']:.0f} requests/s on average). A request fails if it gets any status but 200 or a transport error. "
  f"Times run from the start of `git push` or of `ssh … rollback` until `GET /` (polled every 10 ms once the command has returned) shows the new `VERSION`.")
w("")
w("| Measure | Result | Target |")
w("|---|---|---|")
w(f"| Requests sent during {ndeploy} code-only deploys and {nroll} rollbacks | {load['requests']:,} | |")
w(f"| **Failed requests** | **{load['failed']:,}** | 0: {'**met**' if fail_ok else '**NOT met**'} |")
w(f"| Releases that served the load (distinct `X-Conductor-Release`) | {load['releases_seen']} of {want_releases} | all |")
w(f"| Code-only redeploy, `git push` → new version answers (min / median / max) | {mmm(red)} | ≤ 3 s: {verdict(red, 3.0, failed('redeploy'))} |")
w(f"| Rollback, `ssh … rollback` → target version answers (min / median / max) | {mmm(rb)} | ≤ 2 s: {verdict(rb, 2.0, failed('rollback'))} |")
w(f"| Code-only redeploy, `git push` → first load request answered by the new release | {mmm(first_served('redeploy'))} | |")
w(f"| Rollback, `ssh … rollback` → first load request answered by the new release | {mmm(first_served('rollback'))} | |")
if failed("redeploy") or failed("rollback"):
    w(f"| Deploys / rollbacks that failed | {failed('redeploy')} / {failed('rollback')} | 0 |")
w("")
w("Every redeploy, in order (s): " + ", ".join(f"{x:.2f}" for x in red) + ".")
w("Every rollback, in order (s): " + ", ".join(
    f"{r['t2'] - r['t0']:.2f} (to {r['target']})" if r["t2"] is not None else f"failed (to {r['target']})"
    for r in rows if r["kind"] == "rollback") + ".")
def lead(kind):
    """How long before its command returned the new release answered the load."""
    seen = load.get("release_seen", {})
    return [r["t1"] - seen[r["id"]]["first"] for r in done(kind) if r["id"] in seen]

if red and rb:
    lr, lb = lead("redeploy"), lead("rollback")
    w(f"The command itself returned after a median {statistics.median(returned('redeploy')):.2f} s (push) and "
      f"{statistics.median(returned('rollback')):.2f} s (rollback); it ends once nginx serves the new release "
      f"(retiring the previous one follows, in the build log), so the marker poll after it is short. The load got its first answer from the new "
      f"release a median {statistics.median(lr) if lr else float('nan'):.2f} s (push) and "
      f"{statistics.median(lb) if lb else float('nan'):.2f} s (rollback) before the command returned.")
w("")
if lat:
    w(f"Load latency over all requests: p50 {lat['p50']:.1f} ms, p90 {lat['p90']:.1f} ms, p99 {lat['p99']:.1f} ms, "
      f"p99.9 {lat['p999']:.1f} ms, max {lat['max']:.1f} ms. The HTTP client re-sent {load['retried']} request(s) on a new "
      f"connection after a kept-alive one was closed before answering (Go's transport does this for a GET, as browsers do; "
      f"such a request counts once, by its final outcome); it opened {load['new_connections']} connection(s) in all. "
      f"The load stopped by {load['stopped_by']}.")
    t_start = min(r["t0"] for r in rows) if rows else 0
    slow = load.get("slowest", [])[:5]
    if slow:
        w("Slowest requests: " + "; ".join(
            f"{x['ms']:,.0f} ms at +{x['start'] - t_start:.1f} s ({during(x['start'])})" for x in slow) + ".")
if load["failed"]:
    w("")
    w("Failures by kind: " + ", ".join(f"{k}: {v}" for k, v in sorted(load["failed_by_kind"].items())) + ". First ones:")
    w("")
    w("```")
    for f in load["failures"][:15]:
        w(f"{f['at']} (+{f['elapsed_s']:.3f} s) {f['error']}")
    w("```")
w("")
per = sorted(load["releases"].values())
if per:
    w(f"Responses per release: min {per[0]:,}, median {int(statistics.median(per)):,}, max {per[-1]:,}.")
w("<!-- END bench/rollout.sh output -->")
block = "\n".join(out) + "\n"

print(block)
print(f"failed requests: {load['failed']} (target 0): {'met' if fail_ok else 'NOT met'}", file=sys.stderr)
print(f"redeploy max {max(red) if red else float('nan'):.2f} s (target <= 3 s): {'met' if red_ok else 'NOT met'}", file=sys.stderr)
print(f"rollback max {max(rb) if rb else float('nan'):.2f} s (target <= 2 s): {'met' if rb_ok else 'NOT met'}", file=sys.stderr)
if doc == "-":
    sys.exit(0)

HEADING = "## Zero-downtime rollout and rollback"
BEGIN, END = "<!-- BEGIN bench/rollout.sh output", "<!-- END bench/rollout.sh output -->"
text = open(doc).read()
if BEGIN in text and END in text:
    a = text.index(BEGIN)
    b = text.index(END) + len(END)
    if text[b:b + 1] == "\n":
        b += 1
    text = text[:a] + block + text[b:]
else:
    text = text.rstrip("\n") + "\n\n" + HEADING + "\n\n" + block
open(doc, "w").write(text)
print(f"wrote {doc}", file=sys.stderr)
PY
[ "$FAILED_OPS" = 0 ] || die "$FAILED_OPS deploy(s)/rollback(s) failed"
