#!/usr/bin/env bash
# `make run`: init (once) and serve a self-contained conductor, with the
# caller's SSH key as the first admin.
set -euo pipefail
data=$1 ssh_addr=$2 http_addr=$3
key=${CONDUCTOR_ADMIN_KEY:-}
if [ -z "$key" ]; then
  for k in ~/.ssh/id_ed25519.pub ~/.ssh/id_ecdsa.pub ~/.ssh/id_rsa.pub; do
    [ -f "$k" ] && key=$k && break
  done
fi
if [ -z "$key" ]; then
  echo "run: no SSH key found; creating ~/.ssh/id_ed25519"
  mkdir -p ~/.ssh && chmod 700 ~/.ssh
  ssh-keygen -q -t ed25519 -N '' -f ~/.ssh/id_ed25519
  key=~/.ssh/id_ed25519.pub
fi
if [ ! -f "$data/conductor.db" ]; then
  bin/conductor init --data "$data" --admin-key "$key"
fi
# Administrator accounts (random passwords, once) on the PostgreSQL and
# MariaDB that make setup started, so apps:create --db postgres|mysql work.
bin/conductor databases:init-local --data "$data" || echo "run: apps get SQLite only" >&2
db_flags=()
for kind in postgres mysql; do
  if [ -f "$data/$kind-admin.dsn" ]; then db_flags+=(--"$kind"-dsn-file "$data/$kind-admin.dsn"); fi
done
host=${ssh_addr%:*} port=${ssh_addr##*:} http_port=${http_addr##*:}
cat <<TXT

Try it (from another terminal):
  cp -r $PWD/examples/hello /tmp/hello && cd /tmp/hello
  git init -q -b main && git add -A && git commit -qm 'first deploy'
  git push ssh://git@$host:$port/hello main
  curl http://hello.localhost:$http_port/      # or open it in a browser

TXT
exec bin/conductor serve --data "$data" --ssh-addr "$ssh_addr" --http-addr "$http_addr" "${db_flags[@]}"
