#!/usr/bin/env bash
# Installs what Conductor and its tests need on Debian 12, as root.
# Idempotent and quiet when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

CIRCUS_VENV=${CIRCUS_VENV:-/opt/conductor/circus}
UV_VENV=${UV_VENV:-/opt/conductor/uv}
PYTHONS=${PYTHONS:-/opt/conductor/pythons}
PYENV_VERSIONS=${PYENV_ROOT:-/root/.pyenv}/versions
PACKAGES=(git nginx-light libnginx-mod-http-js python3 python3-venv python3-dev python3-pip gcc libc6-dev
          openssh-client curl ca-certificates sqlite3 passwd procps
          postgresql postgresql-client mariadb-server mariadb-client  # backup: pg_dump, mariadb-dump
          pkg-config libmariadb-dev  # apps' mysqlclient builds against these
          libpq-dev  # and psycopg2 (not -binary) or psycopg[c] against this
          logrotate  # the system-mode test checks the file `conductor install` writes
          redis-server  # redis:create runs one per app (Conductor's own, not Debian's service)
          chromium)  # e2e/dashboard_test.go drives the web dashboard in it, headless
# Node and npm for apps' asset builds (npm ci, npm run build): Debian's
# packages, unless the host has both already (NodeSource's nodejs bundles
# npm and conflicts with Debian's npm package).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  PACKAGES+=(nodejs npm)
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "make setup: run as root (it installs Debian packages and app users are unix users)" >&2
  exit 1
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # Debian starts the system nginx on :80; Conductor runs its own.
  if command -v service >/dev/null && [ -e /run/nginx.pid ]; then service nginx stop >/dev/null 2>&1 || true; fi
  # Debian's redis-server service listens on :6379 for no app: each app's
  # Redis is its own (redis:create).
  if [[ " ${missing[*]} " == *" redis-server "* ]] && command -v service >/dev/null; then
    service redis-server stop >/dev/null 2>&1 || true
    command -v systemctl >/dev/null && systemctl disable redis-server >/dev/null 2>&1 || true
  fi
fi

# Debian's PostgreSQL and MariaDB, running, for apps created with --db
# postgres or mysql (conductor serve --postgres-dsn / --mysql-dsn). The tests
# run their own servers from these binaries, in temp dirs.
for c in $(pg_lsclusters -h 2>/dev/null | awk '$4 != "online" {print $1 "/" $2}'); do
  echo "setup: starting PostgreSQL cluster $c"
  pg_ctlcluster "${c%/*}" "${c#*/}" start || echo "setup: could not start PostgreSQL $c" >&2
done
if ! mariadb-admin --no-defaults ping >/dev/null 2>&1; then
  echo "setup: starting MariaDB"
  service mariadb start >/dev/null || echo "setup: could not start MariaDB" >&2
fi

if ! command -v go >/dev/null; then
  echo "setup: Go 1.26 or newer is needed on PATH (Debian's golang package is too old)" >&2
  exit 1
fi

# circus and its dependencies, pinned, in their own virtualenv made with
# Debian's python3 (app users cannot read a python under /root).
want=$(sha256sum deploy/circus-requirements.txt | cut -d' ' -f1)
have=$(cat "$CIRCUS_VENV/.requirements.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -x "$CIRCUS_VENV/bin/circusd" ]; then
  echo "setup: installing circus into $CIRCUS_VENV"
  rm -rf "$CIRCUS_VENV"
  /usr/bin/python3 -m venv "$CIRCUS_VENV"
  "$CIRCUS_VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r deploy/circus-requirements.txt
  "$CIRCUS_VENV/bin/circusd" --version >/dev/null
  echo "$want" > "$CIRCUS_VENV/.requirements.sha256"
fi

# uv, pinned, in its own virtualenv: apps' dependencies are installed with
# it (/opt/conductor/uv/bin/uv).
want=$(sha256sum deploy/uv-requirements.txt | cut -d' ' -f1)
have=$(cat "$UV_VENV/.requirements.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -x "$UV_VENV/bin/uv" ]; then
  echo "setup: installing uv into $UV_VENV"
  rm -rf "$UV_VENV"
  /usr/bin/python3 -m venv "$UV_VENV"
  "$UV_VENV/bin/pip" install -q --disable-pip-version-check --only-binary=:all: -r deploy/uv-requirements.txt
  "$UV_VENV/bin/uv" --version >/dev/null
  echo "$want" > "$UV_VENV/.requirements.sha256"
fi

go mod download

# versitygw, the S3-compatible server (Apache 2.0) that the e2e tests copy
# database backups to: built from its own pinned module (tools/s3server)
# so its dependencies stay out of Conductor's go.mod. About 2 minutes on
# 2 cores the first time; skipped while its go.mod and go.sum are unchanged.
S3SERVER=${S3SERVER:-/opt/conductor/s3server}
want=$(cat tools/s3server/go.mod tools/s3server/go.sum | sha256sum | cut -d' ' -f1)
have=$(cat "$S3SERVER/.gomod.sha256" 2>/dev/null || true)
if [ "$want" != "$have" ] || [ ! -x "$S3SERVER/versitygw" ]; then
  echo "setup: building versitygw into $S3SERVER"
  mkdir -p "$S3SERVER"
  (cd tools/s3server && go build -trimpath -o "$S3SERVER/versitygw.new" github.com/versity/versitygw/cmd/versitygw)
  mv "$S3SERVER/versitygw.new" "$S3SERVER/versitygw"
  echo "$want" > "$S3SERVER/.gomod.sha256"
fi

# pyenv's CPython 3 interpreters, registered for apps that name a Python
# version: `conductor python:add` (package pythons) copies each into
# $PYTHONS/<version>, readable by app users (/root is not), makes the copy
# work from there and checks it as nobody. Only versions not registered yet
# are added; one that cannot be is reported and setup goes on.
todo=()
for d in "$PYENV_VERSIONS"/*; do
  v=${d##*/}
  if [[ $v =~ ^3\.[0-9]+\.[0-9]+$ ]] && [ -d "$d" ] && [ ! -L "$d" ] && [ -x "$d/bin/python3" ] \
     && [ ! -x "$PYTHONS/$v/bin/python3" ]; then
    todo+=("$d")
  fi
done
if [ ${#todo[@]} -gt 0 ]; then
  echo "setup: registering pyenv's Python ${todo[*]##*/} into $PYTHONS"
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if ! go build -o "$tmp/conductor" ./cmd/conductor; then
    echo "setup: conductor does not build: pyenv's interpreters are not registered" >&2
  elif ! "$tmp/conductor" python:add --pythons "$PYTHONS" "${todo[@]}" >/dev/null; then
    echo "setup: some of pyenv's interpreters were not registered (see above)" >&2
  fi
fi
