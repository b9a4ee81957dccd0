#!/usr/bin/env bash
# The hand-run baseline for bench/deploy.sh: Conductor's deploy steps done
# with plain shell on the same machine, with no SSH, git server, queue,
# circus or app user in between.
#
#   bench/plain-deploy.sh setup    STATE APP HTTP_PORT WEB_PORT_A WEB_PORT_B
#   bench/plain-deploy.sh deploy   STATE WORKTREE REV
#   bench/plain-deploy.sh teardown STATE
#
# setup (untimed, like starting `conductor serve`) starts an nginx of our own
# under STATE/nginx on 127.0.0.1:HTTP_PORT. deploy is one release of the
# Django app in WORKTREE at REV, in the same order as builder/pipeline.go:
#
#   unpack         git archive REV | tar -x into STATE/releases/<id>
#   virtualenv     reuse STATE/venv; build it (python3 -m venv + pip install
#                  -r requirements.txt, fresh pip cache) only if missing
#   settings       write local_settings.py (same overrides as Conductor's)
#   release        python manage.py migrate --noinput
#   collectstatic  python manage.py collectstatic --noinput
#   start          gunicorn (Procfile "web") in the background on the idle
#                  port of the pair, GUNICORN_CMD_ARGS=--bind 127.0.0.1:PORT
#   check          poll the new gunicorn every 0.1 s until it answers < 500
#   switch         rewrite the nginx server block, nginx -t, nginx -s reload,
#                  poll the front every 0.1 s until it serves this release
#   worker         only if the Procfile has "worker:": restart it the way
#                  `systemctl restart` does, SIGTERM the old one and wait
#                  for it to exit, then start the new release's in the
#                  background (setsid, like gunicorn above)
#   retire         wait until the nginx workers replaced by the reload have
#                  exited (they may still be proxying to the old gunicorn),
#                  SIGTERM the old gunicorn without waiting for it to exit,
#                  prune releases beyond the newest 5. Conductor does the
#                  same: it asks circus to `rm --waiting` the old watcher, but
#                  circusctl 0.19.0 drops --waiting for rm and returns while
#                  the process is still stopping.
#
# Each step's wall time goes to STATE/steps.log ("release=ID step=NAME ms=X").
# It runs as root and starts gunicorn directly; Conductor additionally runs
# every build command and the app as the app's own unix user, through circus.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

PYTHON=/usr/bin/python3 # what `conductor serve` uses by default
NGINX=/usr/sbin/nginx

die() { echo "plain-deploy: $*" >&2; exit 1; }

ngx() { "$NGINX" -p "$STATE/nginx/" -c "$STATE/nginx/nginx.conf" "$@"; }

# run: a build command in the release dir with a clean environment, like
# Conductor's (no PIP_* or other variables leak in from the caller).
run() {
  env -i PATH="$STATE/venv/bin:/usr/local/bin:/usr/bin:/bin" VIRTUAL_ENV="$STATE/venv" \
    HOME="$STATE" LANG=C.UTF-8 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=local_settings \
    DATABASE_URL="sqlite:///$STATE/data/db.sqlite3" "$@"
}

# ours PID: PID is still a process this script started (pids get reused):
# its command line or its working directory is under STATE (a Procfile
# command such as "python worker.py" names no path).
ours() {
  tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -qF "$STATE/" && return 0
  case "$(readlink "/proc/$1/cwd" 2>/dev/null)" in "$STATE"/*) return 0 ;; esac
  return 1
}

# stop_pid PID: SIGTERM PID if it is ours, wait up to 15 s, then SIGKILL.
stop_pid() {
  ours "$1" || return 0
  kill -TERM "$1" 2>/dev/null || true
  wait_gone "$1" 15 || { ours "$1" && kill -KILL "$1" 2>/dev/null; } || true
}

step_start() { step=$1 step_t0=$EPOCHREALTIME; echo "-----> $step"; }
step_done() { echo "release=$id step=$step ms=$(ms_since "$step_t0")" >>"$STATE/steps.log"; }

cmd_setup() {
  STATE=$1 APP=$2 HTTP_PORT=$3 PORT_A=$4 PORT_B=$5
  mkdir -p "$STATE"/{nginx/sites,nginx/tmp,nginx/logs,releases,data,run,logs}
  STATE=$(cd "$STATE" && pwd)
  cat >"$STATE/env" <<EOF
APP=$APP
HOST=$APP.localhost
HTTP_PORT=$HTTP_PORT
PORT_A=$PORT_A
PORT_B=$PORT_B
SECRET_KEY=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')
EOF
  cat >"$STATE/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $STATE/nginx/nginx.pid;
error_log $STATE/nginx/error.log warn;
user nobody nogroup;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log $STATE/nginx/access.log;
    client_body_temp_path $STATE/nginx/tmp/body;
    proxy_temp_path $STATE/nginx/tmp/proxy;
    fastcgi_temp_path $STATE/nginx/tmp/fastcgi;
    uwsgi_temp_path $STATE/nginx/tmp/uwsgi;
    scgi_temp_path $STATE/nginx/tmp/scgi;
    sendfile on;
    server_tokens off;
    server_names_hash_bucket_size 128;
    server {
        listen 127.0.0.1:$HTTP_PORT default_server;
        server_name _;
        return 404 "no app is served at this host name\n";
    }
    include $STATE/nginx/sites/*.conf;
}
EOF
  ngx -t -q
  ngx # daemonizes; the master's pid is in nginx/nginx.pid
  wait_tcp 127.0.0.1 "$HTTP_PORT" 10 || die "nginx did not listen on 127.0.0.1:$HTTP_PORT"
}

cmd_deploy() {
  STATE=$(cd "$1" && pwd) WORKTREE=$2 REV=$3
  # shellcheck disable=SC1091
  . "$STATE/env"
  id=$(date -u +%Y%m%dT%H%M%S)-$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')
  dir=$STATE/releases/$id
  local old_port="" port
  [ -f "$STATE/run/current-port" ] && old_port=$(cat "$STATE/run/current-port")
  port=$PORT_A
  [ "$old_port" = "$PORT_A" ] && port=$PORT_B

  step_start unpack
  mkdir -p "$dir"
  git -C "$WORKTREE" archive --format=tar "$REV" | tar -x -C "$dir"
  [ -f "$dir/requirements.txt" ] || die "no requirements.txt"
  step_done

  step_start virtualenv
  if [ ! -f "$STATE/venv/.complete" ]; then
    rm -rf "$STATE/venv"
    (cd "$dir" && run "$PYTHON" -m venv "$STATE/venv")
    (cd "$dir" && run "$STATE/venv/bin/pip" install --disable-pip-version-check --no-input \
      --progress-bar off --cache-dir "$STATE/pip-cache" -r requirements.txt)
    touch "$STATE/venv/.complete"
  else
    echo "       reusing $STATE/venv"
  fi
  step_done

  step_start settings
  cat >"$dir/local_settings.py" <<EOF
from hello.settings import *  # noqa: F401,F403

DEBUG = False
SECRET_KEY = "$SECRET_KEY"
ALLOWED_HOSTS = ["$HOST", "127.0.0.1", "localhost"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": "$STATE/data/db.sqlite3"}}
STATIC_URL = "/static/"
STATIC_ROOT = "$dir/staticfiles"
MEDIA_ROOT = "$STATE/data/media"
EOF
  chmod 600 "$dir/local_settings.py"
  step_done

  step_start release
  (cd "$dir" && run python manage.py migrate --noinput)
  step_done

  step_start collectstatic
  (cd "$dir" && run python manage.py collectstatic --noinput -v 1)
  step_done

  step_start start
  # A failed earlier run may have left a gunicorn on the idle port.
  if [ -f "$STATE/run/gunicorn-$port.pid" ]; then
    stop_pid "$(cat "$STATE/run/gunicorn-$port.pid")"
  fi
  local web
  web=$(sed -n 's/^web:[[:space:]]*//p' "$dir/Procfile")
  [ -n "$web" ] || web="gunicorn hello.wsgi --log-file -"
  # A simple command run with & (not a function), so $! is gunicorn itself:
  # env and setsid exec it.
  cd "$dir"
  # shellcheck disable=SC2086 # the Procfile line is a command line
  env -i PATH="$STATE/venv/bin:/usr/local/bin:/usr/bin:/bin" VIRTUAL_ENV="$STATE/venv" \
    HOME="$STATE" LANG=C.UTF-8 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=local_settings \
    DATABASE_URL="sqlite:///$STATE/data/db.sqlite3" PORT="$port" GUNICORN_CMD_ARGS="--bind 127.0.0.1:$port" \
    setsid $web >"$STATE/logs/web-$id.log" 2>&1 </dev/null &
  echo $! >"$STATE/run/gunicorn-$port.pid"
  cd - >/dev/null
  echo "       web: $web on port $port (pid $(cat "$STATE/run/gunicorn-$port.pid"))"
  step_done

  step_start check
  local code deadline=$((SECONDS + 60)) pid
  pid=$(cat "$STATE/run/gunicorn-$port.pid")
  while :; do
    running "$pid" || { tail -20 "$STATE/logs/web-$id.log" >&2; die "gunicorn (pid $pid) exited"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 -H "Host: $HOST" "http://127.0.0.1:$port/" || true)
    if [ "$code" != "000" ] && [ "$code" -lt 500 ]; then break; fi
    [ "$SECONDS" -lt "$deadline" ] || { tail -20 "$STATE/logs/web-$id.log" >&2; die "new release did not answer"; }
    sleep 0.1
  done
  echo "       GET / answered $code"
  step_done

  step_start switch
  cat >"$STATE/nginx/sites/$APP.conf.tmp" <<EOF
server {
    listen 127.0.0.1:$HTTP_PORT;
    server_name $HOST;
    add_header X-Release $id always;
    location /static/ {
        alias "$dir/staticfiles/";
        expires 1h;
    }
    location / {
        proxy_pass http://127.0.0.1:$port;
        proxy_set_header Host \$host;
        proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
        proxy_set_header X-Forwarded-Proto \$scheme;
        proxy_read_timeout 120s;
    }
}
EOF
  mv "$STATE/nginx/sites/$APP.conf.tmp" "$STATE/nginx/sites/$APP.conf"
  ngx -t -q
  ngx -s reload
  ln -sfn "$dir" "$STATE/current"
  echo "$port" >"$STATE/run/current-port"
  local i
  for i in $(seq 1 50); do
    if curl -s -I --max-time 2 -H "Host: $HOST" "http://127.0.0.1:$HTTP_PORT/static/" | grep -qi "^X-Release: $id"; then
      break
    fi
    sleep 0.1
  done
  step_done

  local worker
  worker=$(sed -n 's/^worker:[[:space:]]*//p' "$dir/Procfile")
  if [ -n "$worker" ]; then
    step_start worker
    if [ -f "$STATE/run/worker.pid" ]; then
      stop_pid "$(cat "$STATE/run/worker.pid")"
      rm -f "$STATE/run/worker.pid"
    fi
    cd "$dir"
    # shellcheck disable=SC2086 # the Procfile line is a command line
    env -i PATH="$STATE/venv/bin:/usr/local/bin:/usr/bin:/bin" VIRTUAL_ENV="$STATE/venv" \
      HOME="$STATE" LANG=C.UTF-8 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=local_settings \
      DATABASE_URL="sqlite:///$STATE/data/db.sqlite3" \
      setsid $worker >"$STATE/logs/worker-$id.log" 2>&1 </dev/null &
    echo $! >"$STATE/run/worker.pid"
    cd - >/dev/null
    echo "       worker: $worker (pid $(cat "$STATE/run/worker.pid"))"
    step_done
  fi

  step_start retire
  local master deadline=$((SECONDS + 30))
  master=$(cat "$STATE/nginx/nginx.pid")
  while pgrep -P "$master" -f 'shutting down' >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || { echo "       warning: old nginx workers still running after 30s"; break; }
    sleep 0.05
  done
  if [ -n "$old_port" ] && [ "$old_port" != "$port" ] && [ -f "$STATE/run/gunicorn-$old_port.pid" ]; then
    local old_pid
    old_pid=$(cat "$STATE/run/gunicorn-$old_port.pid")
    ours "$old_pid" && kill -TERM "$old_pid" 2>/dev/null
    echo "$old_pid" >>"$STATE/run/retired.pids" # teardown makes sure they are gone
    rm -f "$STATE/run/gunicorn-$old_port.pid"
  fi
  local r
  for r in $(ls -1 "$STATE/releases" | sort -r | tail -n +6); do
    [ "$r" = "$id" ] || rm -rf "${STATE:?}/releases/$r"
  done
  step_done
  echo "-----> Deployed $APP at http://$HOST:$HTTP_PORT/ (release $id)"
}

cmd_teardown() {
  [ -d "$1" ] || return 0
  STATE=$(cd "$1" && pwd)
  local f pid
  for f in "$STATE"/run/gunicorn-*.pid "$STATE"/run/worker.pid; do
    [ -f "$f" ] || continue
    stop_pid "$(cat "$f")"
    rm -f "$f"
  done
  if [ -f "$STATE/run/retired.pids" ]; then
    while read -r pid; do stop_pid "$pid"; done <"$STATE/run/retired.pids"
  fi
  if [ -f "$STATE/nginx/nginx.pid" ]; then
    pid=$(cat "$STATE/nginx/nginx.pid")
    if ours "$pid"; then
      kill -QUIT "$pid" 2>/dev/null || true # graceful
      wait_gone "$pid" 15 || { ours "$pid" && kill -KILL "$pid" 2>/dev/null; } || true
    fi
  fi
}

case "${1:-}" in
  setup) shift; [ $# -eq 5 ] || die "usage: $0 setup STATE APP HTTP_PORT WEB_PORT_A WEB_PORT_B"; cmd_setup "$@" ;;
  deploy) shift; [ $# -eq 3 ] || die "usage: $0 deploy STATE WORKTREE REV"; cmd_deploy "$@" ;;
  teardown) shift; [ $# -eq 1 ] || die "usage: $0 teardown STATE"; cmd_teardown "$@" ;;
  *) die "usage: $0 setup|deploy|teardown ..." ;;
esac
