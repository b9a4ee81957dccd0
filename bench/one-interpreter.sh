#!/usr/bin/env bash
# collectstatic + migrate in one Python interpreter (builder/manage.go's
# runner, taken from its source) against two `python manage.py` processes,
# on examples/hello, alternating, as the same user with the same
# environment. Prints wall and CPU (user + sys) time per run and the
# medians. CPU time is the steadier figure on a shared machine.
#
#   bench/one-interpreter.sh        # from the repo root; BENCH_N runs each (default 7)
#
# It makes a virtualenv with uv (/opt/conductor/uv/bin/uv, from uv's cache
# or the index) in a temp dir, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${BENCH_N:-7}
UV=${UV:-/opt/conductor/uv/bin/uv}
DIR=$(mktemp -d /tmp/conductor-oneint.XXXXXX)
trap 'rm -rf "$DIR"' EXIT

"$UV" venv -q --python /usr/bin/python3 "$DIR/venv"
VIRTUAL_ENV="$DIR/venv" "$UV" pip install -q -r examples/hello/requirements.txt
cp -r examples/hello "$DIR/app"
cat >"$DIR/app/local_settings.py" <<EOF
from hello.settings import *  # noqa: F401,F403

DEBUG = False
ALLOWED_HOSTS = ["localhost"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "$DIR/db.sqlite3"}}
STATIC_ROOT = "$DIR/staticfiles"
EOF
# The runner exactly as the builder runs it: the Go raw string's contents.
RUNNER=$(sed -n '/^const manageRunnerPy = `/,/^`/p' builder/manage.go | sed '1s/^const manageRunnerPy = `//;$d')
[ -n "$RUNNER" ] || { echo "no runner in builder/manage.go" >&2; exit 1; }

run() {
  (cd "$DIR/app" && env -i PATH="$DIR/venv/bin:/usr/bin:/bin" VIRTUAL_ENV="$DIR/venv" HOME="$DIR" LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=local_settings "$@")
}
two() {
  run python manage.py collectstatic --noinput -v 1 >/dev/null 2>&1
  run python manage.py migrate --noinput >/dev/null 2>&1
}
one() {
  echo migrate | run python -c "$RUNNER" token >/dev/null 2>&1
}
two # the first run creates the database and __pycache__: not timed

export TIMEFORMAT='%R %U %S'
: >"$DIR/times"
for i in $(seq 1 "$N"); do
  for how in two one; do
    t=$({ time "$how"; } 2>&1)
    read -r wall user sys <<<"$t"
    cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.3f", u + s }')
    echo "$how $wall $cpu" >>"$DIR/times"
    printf '%-3s run %d: wall %s s, cpu %s s\n' "$how" "$i" "$wall" "$cpu"
  done
done
/usr/bin/python3 - "$DIR/times" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1])]
med = {h: (statistics.median(float(r[1]) for r in rows if r[0] == h),
           statistics.median(float(r[2]) for r in rows if r[0] == h)) for h in ("two", "one")}
print(f"median of {sum(r[0] == 'one' for r in rows)} each: two processes wall {med['two'][0]:.3f} s cpu {med['two'][1]:.3f} s; "
      f"one interpreter wall {med['one'][0]:.3f} s cpu {med['one'][1]:.3f} s; "
      f"saved wall {med['two'][0] - med['one'][0]:.3f} s ({1 - med['one'][0] / med['two'][0]:.0%}), "
      f"cpu {med['two'][1] - med['one'][1]:.3f} s ({1 - med['one'][1] / med['two'][1]:.0%})")
EOF
