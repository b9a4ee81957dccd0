# Helpers shared by bench/deploy.sh and bench/plain-deploy.sh (sourced).
# shellcheck shell=bash

export LC_ALL=C # EPOCHREALTIME and printf use "." as the decimal point

# A free TCP port on the loopback interface (the kernel picks it).
free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# port_range_free FROM TO: true if nothing listens on any port of the range.
port_range_free() {
  [ -z "$(ss -Hltn "sport >= :$1 and sport <= :$2" 2>/dev/null)" ]
}

# pick_port_range SIZE: prints the first port of SIZE consecutive ports, all
# unused, in 61000-65499: above the kernel's ephemeral range (32768-60999 by
# default), so no outgoing connection or `listen :0` elsewhere on the machine
# lands in it, and away from Conductor's default 20000-29999 and the e2e
# tests' 30000-39999.
pick_port_range() {
  local size=$1 lo=61000 hi=65499 base i
  read -r _ eph_hi </proc/sys/net/ipv4/ip_local_port_range
  [ "$eph_hi" -lt "$lo" ] || lo=$((eph_hi + 1))
  [ $((hi - lo - size)) -ge 10 ] || lo=41000 hi=49999 # a widened ephemeral range: take our chances
  for i in $(seq 1 100); do
    base=$((lo + (RANDOM % ((hi - lo - size) / 10)) * 10))
    if port_range_free "$base" $((base + size - 1)); then
      echo "$base"
      return 0
    fi
  done
  echo "no free range of $size ports in $lo-$hi" >&2
  return 1
}

# wait_tcp HOST PORT SECONDS [PID]: wait until something accepts on HOST:PORT.
# Gives up early if PID (the process that should listen) has exited.
wait_tcp() {
  local host=$1 port=$2 secs=$3 pid=${4:-} deadline
  deadline=$((SECONDS + secs))
  until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      return 1
    fi
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.05
  done
}

# running PID: true while PID exists and has not exited. An exited process
# that its parent has not reaped yet (a zombie, state Z) counts as gone: it
# holds no port or file any more. This matters for processes whose starter
# has exited: they are reparented to PID 1, and some inits (this VM's among
# them) reap orphans only about once a second, so `kill -0` would report a
# long-dead process as alive.
running() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # after "pid (comm) "
  [ "${stat%% *}" != Z ]
}

# wait_gone PID SECONDS: wait until PID (not necessarily our child) exits.
wait_gone() {
  local pid=$1 deadline=$((SECONDS + $2))
  while running "$pid"; do
    [ "$SECONDS" -lt "$deadline" ] || return 1
    sleep 0.02
  done
}

# ms_since START: milliseconds elapsed since START (an $EPOCHREALTIME value).
ms_since() {
  local now=$EPOCHREALTIME
  awk -v a="$1" -v b="$now" 'BEGIN { printf "%.1f", (b - a) * 1000 }'
}

# wait_quiet: wait (up to 10 s) until the machine's CPUs were at least 90%
# idle over 200 ms, so that a timed deploy does not share the cores with what
# the run before it left booting (the by-hand script's worker starts after its
# switch and is never waited for; Conductor retires the previous release
# after its push). Both tools get the same wait, outside their timed window.
wait_quiet() {
  local deadline=$((SECONDS + 10)) a b
  while [ "$SECONDS" -lt "$deadline" ]; do
    read -r _ a </proc/stat
    sleep 0.2
    read -r _ b </proc/stat
    awk -v a="$a" -v b="$b" 'BEGIN {
      n = split(a, x, " "); split(b, y, " ")
      for (i = 1; i <= n; i++) { d = y[i] - x[i]; total += d; if (i == 4 || i == 5) idle += d }
      exit !(total > 0 && idle / total >= 0.9)
    }' && return 0
  done
}
