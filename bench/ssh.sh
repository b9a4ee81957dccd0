#!/usr/bin/env bash
# SSH endpoint benchmarks (issue 8): git transport throughput next to
# OpenSSH's sshd, command latency under 200 concurrent sessions, and the
# memory footprint and start-up time of `conductor serve`.
#
#   bench/ssh.sh [transport|latency|client|footprint|all]   # default: all
#
# From the repo root, after `make build`, as root. Each part prints its
# results on stderr as it goes and a summary at the end; BENCH_LOGS=DIR keeps
# the raw data (JSON, timings, logs) after the temp dir is removed.
#
# transport: generates a deterministic ~100 MB repository (BENCH_SMALL_FILES
#   small files, default 20000 of ~2.5 KB of base64 text, plus BENCH_BIG_N
#   random blobs of BENCH_BIG_MB MB, default 4 × 16), packs it once, then
#   BENCH_RUNS times (default 3) and alternating: pushes it as
#   refs/heads/bulk (not a deploy branch: the pre-receive hook stores it, no
#   deploy runs) to a new, empty app on Conductor, and to a new bare repo
#   behind OpenSSH's sshd (its own config, host key and AuthorizedKeysFile in
#   the temp dir, ListenAddress 127.0.0.1, a free port, run as a child of
#   this script; `apt-get install openssh-server` first if it is missing,
#   without starting the system's sshd; SetEnv SHLVL=1 so root's ~/.bashrc is
#   not sourced, and Conductor's key exchange, curve25519). The same for a bare repo with
#   receive.fsckObjects=true, which Conductor always sets. Then clones each
#   pushed repo back (`git clone --bare`, upload-pack). MB/s = pack bytes /
#   10^6 / wall seconds of the git command.
# latency: `conductor serve --ssh-max-sessions 1000 --ssh-max-sessions-per-key
#   1000`, one app, then bench/sshload with BENCH_SESSIONS (default 200)
#   workers × BENCH_ROUNDS (default 5) commands alternating `apps` and
#   `config <app>`: a new connection per command (each run twice: with
#   x/crypto's client defaults, then offering only the key exchange and
#   cipher Debian 12's OpenSSH client settles on), then one connection per
#   worker. Then serve restarted with the default limits (100, 10 per key)
#   and the same load from 1 key and from 20 admin keys, counting refusals.
#   Then the same load (a new connection per command) on OpenSSH's sshd
#   running `true`. BENCH_SERVE_ARGS adds serve flags (e.g.
#   --ssh-max-handshakes 0 to compare without the handshake gate).
# client: what one person typing `ssh conductor …` sees: OpenSSH's own
#   client, one command at a time, BENCH_CLIENT_N (default 100) × `whoami`
#   then × `apps`, each a new ssh process and connection; wall time per
#   command (p50 / p90 / p99 / max).
# footprint: BENCH_RUNS times, a fresh `conductor init` + `serve` (embedded
#   NATS): time from exec to the SSH port accepting, and VmRSS of serve and
#   of each of its descendants 2 s after that. On the last one: 100 ×
#   `apps:create app-N` over ssh, then VmRSS again.
#
# Everything runs in a fresh temp dir under /tmp (mode 711) on free loopback
# ports; conductor serve (and its circusd and nginx), sshd and the temp dir
# are removed on exit, whatever happens. No app is deployed, so no unix user
# is created.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/lib.sh
. bench/lib.sh

WHAT=${1:-all}
RUNS=${BENCH_RUNS:-3}
SMALL_FILES=${BENCH_SMALL_FILES:-20000}
BIG_N=${BENCH_BIG_N:-4}
BIG_MB=${BENCH_BIG_MB:-16}
SESSIONS=${BENCH_SESSIONS:-200}
ROUNDS=${BENCH_ROUNDS:-5}
NAPPS=${BENCH_APPS:-100}
CLIENT_N=${BENCH_CLIENT_N:-100}
BIN=${BENCH_BIN:-$ROOT/bin/conductor}

die() { echo "ssh-bench: $*" >&2; exit 1; }
say() { printf 'ssh-bench: %s\n' "$*" >&2; }

case $WHAT in transport | latency | client | footprint | all) ;; *) die "usage: $0 [transport|latency|client|footprint|all]" ;; esac
[ "$(id -u)" = 0 ] || die "run as root"
[ -x "$BIN" ] || die "$BIN is missing: run make build"
for t in go git ssh ssh-keygen ss pgrep /usr/sbin/nginx /usr/bin/python3 /opt/conductor/circus/bin/circusd; do
  command -v "$t" >/dev/null || die "$t is missing: run make setup"
done

DIR=$(mktemp -d /tmp/conductor-ssh.XXXXXX)
chmod 711 "$DIR"
mkdir -p "$DIR/logs"
SERVE_PID="" SSHD_PID="" MADE_RUN_SSHD=""
SUMMARY=$DIR/summary.txt
: >"$SUMMARY"
out() { printf '%s\n' "$*" | tee -a "$SUMMARY" >&2; }

stop_pid() { # PID SECONDS: SIGTERM a child of this shell, wait, then SIGKILL
  local pid=$1 i
  [ -n "$pid" ] || return 0
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null
    for i in $(seq 1 $(($2 * 10))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && { say "pid $pid ignored SIGTERM; killing it"; kill -KILL "$pid" 2>/dev/null; }
  fi
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$? pid
  trap - EXIT INT TERM
  set +e
  stop_serve # and its circusd and nginx, which outlive it
  stop_pid "$SSHD_PID" 10
  if [ -n "${BENCH_LOGS:-}" ]; then
    mkdir -p "$BENCH_LOGS" && cp -r "$DIR/logs" "$SUMMARY" "$BENCH_LOGS"/ 2>/dev/null
  fi
  for pid in $(pgrep -f -- "$DIR"); do
    say "leftover process $(ps -o pid=,args= -p "$pid" 2>/dev/null); stopping it"
    kill -TERM "$pid" 2>/dev/null
  done
  sleep 0.3
  for pid in $(pgrep -f -- "$DIR"); do kill -KILL "$pid" 2>/dev/null; done
  [ -n "$MADE_RUN_SSHD" ] && rmdir /run/sshd 2>/dev/null
  rm -rf "$DIR"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ssh-keygen -q -t ed25519 -N '' -C bench -f "$DIR/key"
SSH_OPTS=(-i "$DIR/key" -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no
  -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
export GIT_SSH_COMMAND="ssh ${SSH_OPTS[*]}"
export GIT_TERMINAL_PROMPT=0 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com \
  GIT_AUTHOR_DATE='2026-01-01T00:00:00Z' GIT_COMMITTER_DATE='2026-01-01T00:00:00Z'
RANGE=$(pick_port_range 400)

# start_serve DATA LOG [serve flags...]: start conductor serve on free
# loopback ports; sets SERVE_PID, SSH_PORT, HTTP_PORT and START_MS (exec ->
# SSH port accepting). init DATA first if it does not exist.
start_serve() {
  local data=$1 log=$2 t0
  shift 2
  SERVE_DATA=$data
  if [ ! -d "$data" ]; then
    "$BIN" init --data "$data" --admin-key "$DIR/key.pub" >"$log.init" 2>&1 || { cat "$log.init" >&2; die "conductor init failed"; }
  fi
  SSH_PORT=$(free_port)
  HTTP_PORT=$(free_port)
  t0=$EPOCHREALTIME
  "$BIN" serve --data "$data" --ssh-addr "127.0.0.1:$SSH_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
    --port-range "$RANGE-$((RANGE + 399))" "$@" >"$log" 2>&1 &
  SERVE_PID=$!
  until (exec 3<>"/dev/tcp/127.0.0.1/$SSH_PORT") 2>/dev/null; do
    kill -0 "$SERVE_PID" 2>/dev/null || { tail -n 30 "$log" >&2; die "conductor serve exited"; }
    [ "$(ms_since "$t0" | cut -d. -f1)" -lt 60000 ] || die "conductor serve did not listen in 60 s"
    sleep 0.002
  done
  START_MS=$(ms_since "$t0")
}
# stop_serve stops serve, then its circusd, nginx and apps (they outlive it).
stop_serve() {
  stop_pid "$SERVE_PID" 60
  SERVE_PID=""
  [ -z "${SERVE_DATA:-}" ] || "$BIN" stop-all --data "$SERVE_DATA" >/dev/null 2>&1
}
cssh() { ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" git@127.0.0.1 "$@"; }

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
secs_since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }'; }

# start_sshd EXTRA_CONFIG: OpenSSH's sshd as a child of this script, with
# its own config, host key and AuthorizedKeysFile (our key) in $DIR/sshd, on
# a free loopback port; sets SSHD_PID and SSHD_PORT. Installs
# openssh-server if missing, without starting the system's sshd.
start_sshd() {
  if [ ! -x /usr/sbin/sshd ]; then
    say "installing openssh-server (the system sshd is not started)"
    DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -q openssh-server >"$DIR/logs/apt.log" 2>&1 ||
      { tail "$DIR/logs/apt.log" >&2; die "apt-get install openssh-server failed"; }
  fi
  [ -d /run/sshd ] || { mkdir -m 755 /run/sshd && MADE_RUN_SSHD=1; }
  mkdir -p "$DIR/sshd"
  [ -f "$DIR/sshd/host_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$DIR/sshd/host_key"
  cp "$DIR/key.pub" "$DIR/sshd/authorized_keys"
  SSHD_PORT=$(free_port)
  cat >"$DIR/sshd/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSHD_PORT
HostKey $DIR/sshd/host_key
PidFile $DIR/sshd/sshd.pid
AuthorizedKeysFile $DIR/sshd/authorized_keys
StrictModes no
UsePAM no
PermitRootLogin prohibit-password
AllowUsers root
PasswordAuthentication no
KbdInteractiveAuthentication no
AcceptEnv GIT_PROTOCOL
$1
LogLevel ERROR
# bash sources ~/.bashrc for a command run by sshd unless SHLVL >= 2 after
# its own increment: this skips root's (here: pyenv init, ~120 ms), which a
# dedicated git user would not have.
SetEnv SHLVL=1
# The key exchange Conductor (x/crypto) negotiates with the same client:
# OpenSSH 9.2's default sntrup761x25519 costs ~100 ms more per connection.
KexAlgorithms curve25519-sha256,curve25519-sha256@libssh.org
EOF
  /usr/sbin/sshd -D -e -f "$DIR/sshd/sshd_config" 2>"$DIR/logs/sshd.log" &
  SSHD_PID=$!
  wait_tcp 127.0.0.1 "$SSHD_PORT" 10 "$SSHD_PID" || { cat "$DIR/logs/sshd.log" >&2; die "sshd did not start"; }
}

# --- transport ----------------------------------------------------------------
bench_transport() {
  local src=$DIR/src pack bytes mb i t0 s kind url
  say "transport: generating the repository ($SMALL_FILES small files, $BIG_N × $BIG_MB MB random)"
  mkdir -p "$src"
  /usr/bin/python3 - "$src" "$SMALL_FILES" "$BIG_N" "$BIG_MB" <<'EOF'
import base64, os, random, sys
root, small, big_n, big_mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rng = random.Random(8)  # deterministic: the same repository on every run
for i in range(small):
    d = os.path.join(root, "src", "d%03d" % (i % 200))
    os.makedirs(d, exist_ok=True)
    n = 1000 + rng.randrange(2000)  # 1000-2999 random bytes -> ~1.3-4 KB base64
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(base64.encodebytes(rng.randbytes(n)))
os.makedirs(os.path.join(root, "assets"), exist_ok=True)
for i in range(big_n):
    with open(os.path.join(root, "assets", "blob%d.bin" % i), "wb") as f:
        f.write(rng.randbytes(big_mb * 1000 * 1000))
EOF
  git -C "$src" init -q -b main
  git -C "$src" add -A
  git -C "$src" commit -q -m bulk
  git -C "$src" repack -q -a -d
  pack=$(ls "$src"/.git/objects/pack/*.pack)
  bytes=$(stat -c %s "$pack")
  mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
  say "transport: commit $(git -C "$src" rev-parse --short HEAD), $(git -C "$src" count-objects -v | sed -n 's/^in-pack: //p') objects, pack $mb MB"
  rm -rf "$src/src" "$src/assets" # the work tree is not needed any more

  start_serve "$DIR/data-transport" "$DIR/logs/serve-transport.log"
  say "transport: conductor serve pid $SERVE_PID on 127.0.0.1:$SSH_PORT"

  start_sshd "MaxStartups 100"
  say "transport: $(/usr/sbin/sshd -V 2>&1 | head -n 1) pid $SSHD_PID on 127.0.0.1:$SSHD_PORT"
  for kind in conductor openssh; do
    if [ $kind = conductor ]; then p=$SSH_PORT; cmd="help"; else p=$SSHD_PORT; cmd="true"; fi
    ssh "${SSH_OPTS[@]}" -v -p "$p" "$([ $kind = conductor ] && echo git || echo root)@127.0.0.1" "$cmd" 2>&1 >/dev/null |
      sed -n 's/.*kex: server->client cipher: \([^ ]*\).*/\1/p; s/.*kex: algorithm: \(.*\)/kex \1/p' | paste -sd ' ' |
      sed "s/^/transport: $kind negotiates /" >&2 || true
  done

  # A trivial command's round trip (connection, key exchange, auth, exec):
  # the fixed cost in every push or clone below.
  local rt_c=() rt_o=()
  for i in $(seq 1 7); do
    t0=$EPOCHREALTIME; cssh whoami >/dev/null; rt_c+=("$(ms_since "$t0")")
    t0=$EPOCHREALTIME; ssh "${SSH_OPTS[@]}" -p "$SSHD_PORT" root@127.0.0.1 true; rt_o+=("$(ms_since "$t0")")
  done
  RT_LINE="trivial command round trip (ssh client, 7 runs, median): Conductor \`whoami\` $(printf '%s\n' "${rt_c[@]}" | median) ms, sshd \`true\` $(printf '%s\n' "${rt_o[@]}" | median) ms"
  say "transport: $RT_LINE"

  local T=$DIR/transport.tsv # kind op run seconds
  : >"$T"
  for i in $(seq 1 "$RUNS"); do
    cssh apps:create "bulk-$i" >/dev/null 2>>"$DIR/logs/apps-create.log" || die "apps:create bulk-$i failed"
    git init -q --bare "$DIR/openssh/bulk-$i.git"
    git init -q --bare "$DIR/openssh/fsck-$i.git"
    git -C "$DIR/openssh/fsck-$i.git" config receive.fsckObjects true
    for kind in conductor openssh openssh-fsck; do
      case $kind in
        conductor) url="ssh://git@127.0.0.1:$SSH_PORT/bulk-$i" ;;
        openssh) url="ssh://root@127.0.0.1:$SSHD_PORT$DIR/openssh/bulk-$i.git" ;;
        openssh-fsck) url="ssh://root@127.0.0.1:$SSHD_PORT$DIR/openssh/fsck-$i.git" ;;
      esac
      sync
      t0=$EPOCHREALTIME
      git -C "$src" push -q "$url" HEAD:refs/heads/bulk >"$DIR/logs/push-$kind-$i.log" 2>&1 ||
        { cat "$DIR/logs/push-$kind-$i.log" >&2; die "push to $kind failed"; }
      s=$(secs_since "$t0")
      printf '%s\tpush\t%s\t%s\n' "$kind" "$i" "$s" >>"$T"
      say "transport: push  $kind #$i: $s s ($(awk -v b="$bytes" -v s="$s" 'BEGIN { printf "%.1f", b / 1e6 / s }') MB/s)"
    done
    for kind in conductor openssh; do
      case $kind in
        conductor) url="ssh://git@127.0.0.1:$SSH_PORT/bulk-$i" ;;
        openssh) url="ssh://root@127.0.0.1:$SSHD_PORT$DIR/openssh/bulk-$i.git" ;;
      esac
      rm -rf "$DIR/clone"
      sync
      t0=$EPOCHREALTIME
      git clone -q --bare "$url" "$DIR/clone" >"$DIR/logs/clone-$kind-$i.log" 2>&1 ||
        { cat "$DIR/logs/clone-$kind-$i.log" >&2; die "clone from $kind failed"; }
      s=$(secs_since "$t0")
      [ "$(git -C "$DIR/clone" rev-parse bulk)" = "$(git -C "$src" rev-parse HEAD)" ] || die "clone from $kind: wrong commit"
      printf '%s\tclone\t%s\t%s\n' "$kind" "$i" "$s" >>"$T"
      say "transport: clone $kind #$i: $s s ($(awk -v b="$bytes" -v s="$s" 'BEGIN { printf "%.1f", b / 1e6 / s }') MB/s)"
    done
    rm -rf "$DIR/clone" "$DIR/openssh/fsck-$i.git"
  done
  cp "$T" "$DIR/logs/"
  out "## transport ($(date -u '+%Y-%m-%d %H:%M UTC'), pack $mb MB = $bytes bytes, $RUNS runs, load $(cut -d' ' -f1-3 /proc/loadavg))"
  out "$RT_LINE"
  local op med cmed omed
  for op in push clone; do
    for kind in conductor openssh openssh-fsck; do
      grep -q "^$kind	$op	" "$T" || continue
      med=$(awk -v k=$kind -v o=$op '$1 == k && $2 == o { print $4 }' "$T" | median)
      out "$(printf '%-5s %-13s median %6.2f s  %6.1f MB/s  (runs: %s)' $op $kind "$med" \
        "$(awk -v b="$bytes" -v s="$med" 'BEGIN { print b / 1e6 / s }')" \
        "$(awk -v k=$kind -v o=$op '$1 == k && $2 == o { printf "%s ", $4 }' "$T")")"
    done
    cmed=$(awk -v o=$op '$1 == "conductor" && $2 == o { print $4 }' "$T" | median)
    omed=$(awk -v o=$op '$1 == "openssh" && $2 == o { print $4 }' "$T" | median)
    out "$(printf '%-5s ratio Conductor/OpenSSH (throughput): %.2f×' $op "$(awk -v c="$cmed" -v o="$omed" 'BEGIN { print o / c }')")"
    if [ $op = push ]; then
      omed=$(awk '$1 == "openssh-fsck" && $2 == "push" { print $4 }' "$T" | median)
      out "$(printf 'push  ratio Conductor/(OpenSSH + receive.fsckObjects): %.2f×' "$(awk -v c="$cmed" -v o="$omed" 'BEGIN { print o / c }')")"
    fi
  done
  stop_pid "$SSHD_PID" 10
  SSHD_PID=""
  stop_serve
  rm -rf "$DIR/src" "$DIR/openssh" "$DIR/data-transport"
}

# --- latency ------------------------------------------------------------------
# cpu_ticks PID: user + system CPU of PID, and of its children that it has
# waited for (sshd's per-connection processes; serve has none in a run), in
# clock ticks.
cpu_ticks() { local s; s=$(cat "/proc/$1/stat"); s=${s##*) }; echo "$s" | awk '{ print $12 + $13 + $14 + $15 }'; }
bench_latency() {
  local data=$DIR/data-latency load=$DIR/sshload keys k i
  go build -o "$load" ./bench/sshload || die "go build bench/sshload failed"
  # shellcheck disable=SC2086 # BENCH_SERVE_ARGS: extra serve flags, split on spaces
  start_serve "$data" "$DIR/logs/serve-latency.log" --ssh-max-sessions 1000 --ssh-max-sessions-per-key 1000 ${BENCH_SERVE_ARGS:-}
  say "latency: conductor serve pid $SERVE_PID on 127.0.0.1:$SSH_PORT (limits 1000 / 1000 per key)"
  cssh apps:create lat-app >/dev/null
  cssh config:set lat-app A=1 B=2 >/dev/null 2>&1 || true
  keys=$DIR/key
  for k in $(seq 1 19); do
    ssh-keygen -q -t ed25519 -N '' -C "k$k" -f "$DIR/key$k"
    cssh keys:add "bench-k$k" --admin <"$DIR/key$k.pub" >/dev/null
    keys="$keys,$DIR/key$k"
  done
  "$load" -addr "127.0.0.1:$SSH_PORT" -key "$DIR/key" -sessions 20 -rounds 2 -commands 'apps;config lat-app' >/dev/null # warm-up
  run_load() { # NAME ARGS...: against conductor serve, or sshd with SERVER=sshd
    local name=$1 c0 c1 pid=$SERVE_PID
    shift
    [ "${SERVER:-}" = sshd ] && pid=$SSHD_PID
    c0=$(cpu_ticks "$pid")
    if [ "${SERVER:-}" = sshd ]; then
      "$load" -addr "127.0.0.1:$SSHD_PORT" -user root -rounds "$ROUNDS" -commands 'true' "$@" >"$DIR/logs/sshload-$name.json"
    else
      "$load" -addr "127.0.0.1:$SSH_PORT" -rounds "$ROUNDS" -commands 'apps;config lat-app' "$@" >"$DIR/logs/sshload-$name.json"
    fi || die "sshload $name failed"
    c1=$(cpu_ticks "$pid")
    /usr/bin/python3 - "$DIR/logs/sshload-$name.json" "$name" "$((c1 - c0))" "$(getconf CLK_TCK)" <<'EOF' | tee -a "$SUMMARY" >&2
import json, sys
s = json.load(open(sys.argv[1]))
s["server_cpu_s"] = int(sys.argv[3]) / int(sys.argv[4])
json.dump(s, open(sys.argv[1], "w"), indent=2)
ok, h = s["latency_ok"], s.get("latency_ok_handshake")
line = (f"{sys.argv[2]:<24} mode={s['mode']:<5} sessions={s['sessions']} keys={s['keys']} cmds={s['attempted']} "
        f"ok={s['ok']} refused={s['refused']} errors={s['errors']} peak={s['peak_in_flight']} "
        f"{s['commands_per_s']:.0f}/s | ok p50 {ok['p50_ms']:.1f} p90 {ok['p90_ms']:.1f} p99 {ok['p99_ms']:.1f} max {ok['max_ms']:.1f} ms")
if s.get("kex"):
    line += f" | kex {','.join(s['kex'])} ciphers {','.join(s.get('ciphers') or ['default'])}"
if h:
    line += f" | handshake p50 {h['p50_ms']:.1f} p99 {h['p99_ms']:.1f}"
se = s["latency_ok_session"]
line += f" | session p50 {se['p50_ms']:.1f} p99 {se['p99_ms']:.1f}"
n = max(1, s["attempted"])
line += (f" | cpu per command: server {1000 * s['server_cpu_s'] / n:.2f} ms, client {1000 * s['client_cpu_s'] / n:.2f} ms"
         f" ({s['server_cpu_s']:.1f} + {s['client_cpu_s']:.1f} s in {s['wall_s']:.2f} s)")
if s["refused"]:
    r = s["latency_refused"]
    line += f" | refused p50 {r['p50_ms']:.1f} p99 {r['p99_ms']:.1f}; {s['refused_samples']}"
if s["errors"]:
    line += f" | errors: {s['error_samples'][:3]}"
print(line)
EOF
  }
  out "## latency ($(date -u '+%Y-%m-%d %H:%M UTC'), $SESSIONS sessions × $ROUNDS commands, load $(cut -d' ' -f1-3 /proc/loadavg))"
  # Each run twice: with x/crypto's client defaults (it picks the hybrid
  # mlkem768x25519-sha256 exchange), then offering only what Debian 12's
  # own ssh (OpenSSH 9.2, no ML-KEM) negotiates with Conductor, as `ssh -v`
  # shows: curve25519-sha256 and chacha20-poly1305.
  for i in $(seq 1 "$RUNS"); do
    run_load "raised-conn-$i" -sessions "$SESSIONS" -key "$DIR/key" -mode conn
    run_load "raised-conn-openssh92-$i" -sessions "$SESSIONS" -key "$DIR/key" -mode conn \
      -kex curve25519-sha256 -ciphers chacha20-poly1305@openssh.com
  done
  run_load "raised-reuse" -sessions "$SESSIONS" -key "$DIR/key" -mode reuse
  run_load "raised-conn-20keys" -sessions "$SESSIONS" -key "$keys" -mode conn
  stop_serve
  # shellcheck disable=SC2086
  start_serve "$data" "$DIR/logs/serve-latency-defaults.log" ${BENCH_SERVE_ARGS:-}
  say "latency: conductor serve pid $SERVE_PID on 127.0.0.1:$SSH_PORT (default limits)"
  run_load "default-conn-1key" -sessions "$SESSIONS" -key "$DIR/key" -mode conn
  run_load "default-conn-20keys" -sessions "$SESSIONS" -key "$keys" -mode conn
  run_load "default-reuse-20keys" -sessions "$SESSIONS" -key "$keys" -mode reuse
  out "server log: $(grep -c 'ssh session refused' "$DIR/logs/serve-latency-defaults.log") 'ssh session refused' lines with default limits; $(cat "$DIR/logs/serve-latency.log" "$DIR/logs/serve-latency-defaults.log" | grep -c 'level=ERROR') level=ERROR lines in both runs"
  stop_serve
  # The same load on OpenSSH's sshd running `true`: the floor for any tool
  # whose commands run behind sshd (Dokku, piku, gitolite). MaxStartups is
  # raised so that sshd does not drop connections beyond its default 10
  # unauthenticated ones; its server CPU includes its per-connection
  # processes.
  start_sshd "MaxStartups 1000"
  say "latency: $(/usr/sbin/sshd -V 2>&1 | head -n 1) pid $SSHD_PID on 127.0.0.1:$SSHD_PORT, command \`true\`"
  SERVER=sshd run_load "sshd-true-conn" -sessions "$SESSIONS" -key "$DIR/key" -mode conn
  stop_pid "$SSHD_PID" 10
  SSHD_PID=""
  rm -rf "$data"
}

# --- client -------------------------------------------------------------------
bench_client() {
  local cmd i t0 f
  start_serve "$DIR/data-client" "$DIR/logs/serve-client.log"
  out "## client: OpenSSH $(ssh -V 2>&1 | cut -d, -f1), $CLIENT_N commands each, one at a time ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
  for cmd in whoami apps; do
    f=$DIR/logs/client-$cmd.txt
    : >"$f"
    for i in $(seq 1 "$CLIENT_N"); do
      t0=$EPOCHREALTIME
      cssh "$cmd" >/dev/null </dev/null || die "ssh $cmd failed"
      echo "$(ms_since "$t0")" >>"$f"
    done
    out "$cmd: $(sort -g "$f" | awk '{ a[NR] = $1 } END { printf "p50 %.1f / p90 %.1f / p99 %.1f / max %.1f ms", a[int(NR * 0.5) + 1], a[int(NR * 0.9) + 1], a[int(NR * 0.99) + 1], a[NR] }')"
  done
  stop_serve
}

# --- footprint ----------------------------------------------------------------
# rss_tree PID: "name pid rss_kB" for PID and each of its descendants.
rss_tree() {
  local pid=$1 c
  printf '%s %s %s\n' "$(cat "/proc/$pid/comm")" "$pid" "$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")"
  for c in $(ps -o pid= --ppid "$pid"); do rss_tree "$c"; done
}
rss_line() { # PID: one summary line from rss_tree
  rss_tree "$1" | awk -v top="$1" '
    $2 == top { printf "conductor %.1f MB", $3 / 1024; next }
    { n[$1]++; s[$1] += $3 }
    END { for (k in s) printf "; %s ×%d %.1f MB", k, n[k], s[k] / 1024; print "" }'
}
bench_footprint() {
  local F=$DIR/footprint.tsv i a t0
  : >"$F"
  out "## footprint ($(date -u '+%Y-%m-%d %H:%M UTC'), load $(cut -d' ' -f1-3 /proc/loadavg))"
  for i in $(seq 1 "$RUNS"); do
    start_serve "$DIR/data-fp-$i" "$DIR/logs/serve-footprint-$i.log"
    sleep 2
    rss_tree "$SERVE_PID" >"$DIR/logs/rss-idle-$i.txt"
    printf '%s\t%s\t%s\n' "$i" "$START_MS" "$(awk '/^VmRSS:/ { print $2 }' "/proc/$SERVE_PID/status")" >>"$F"
    out "start #$i (fresh init): exec -> SSH accepting $START_MS ms; idle after 2 s: $(rss_line "$SERVE_PID")"
    if [ "$i" -lt "$RUNS" ]; then
      stop_serve
      rm -rf "$DIR/data-fp-$i"
    fi
  done
  out "start-up median $(cut -f2 "$F" | median) ms; idle conductor VmRSS median $(cut -f3 "$F" | median | awk '{ printf "%.1f", $1 / 1024 }') MB"
  t0=$EPOCHREALTIME
  for a in $(seq 1 "$NAPPS"); do
    cssh apps:create "app-$a" >/dev/null 2>>"$DIR/logs/apps-create.log" || die "apps:create app-$a failed"
  done
  out "$NAPPS × apps:create over ssh took $(secs_since "$t0") s"
  sleep 2
  rss_tree "$SERVE_PID" >"$DIR/logs/rss-apps.txt"
  out "after $NAPPS apps (+2 s): $(rss_line "$SERVE_PID") (VmHWM $(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVE_PID/status") MB)"
  stop_serve
  start_serve "$DIR/data-fp-$RUNS" "$DIR/logs/serve-footprint-restart.log"
  sleep 2
  out "restart with $NAPPS apps: exec -> SSH accepting $START_MS ms; idle after 2 s: $(rss_line "$SERVE_PID")"
  stop_serve
}

say "temp dir $DIR; $("$BIN" version 2>/dev/null); $(git --version); load $(cut -d' ' -f1-3 /proc/loadavg)"
case $WHAT in
  transport) bench_transport ;;
  latency) bench_latency ;;
  client) bench_client ;;
  footprint) bench_footprint ;;
  all) bench_transport; bench_latency; bench_client; bench_footprint ;;
esac
echo "----- summary" >&2
cat "$SUMMARY"
