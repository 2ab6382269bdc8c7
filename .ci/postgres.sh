#!/usr/bin/env bash
# A throwaway PostgreSQL server for the state store tests.
#   .ci/postgres.sh start DIR   start one with its data in DIR on a free port; print its SQLAlchemy URL
#   .ci/postgres.sh stop DIR    stop it and remove DIR (safe to call when start printed nothing)
# Installs Debian's postgresql when missing. `start` prints nothing (and exits 0) if that is impossible here,
# so that CI still runs every other test and says loudly that PostgreSQL was skipped.
set -uo pipefail
command=${1:?start or stop}
data=${2:?data directory}
bin_dir() { dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1)"; }
if [ "$command" = stop ]; then
  if [ -f "$data/postmaster.pid" ]; then
    su postgres -s /bin/sh -c "$(bin_dir)/pg_ctl -D $data -m immediate stop" >/dev/null 2>&1
  fi
  rm -rf "$data"
  exit 0
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >/dev/null 2>&1 || exit 0
fi
bin=$(bin_dir)
# A port nobody listens on now (a server left over from an interrupted run must not make us skip).
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mkdir -p "$data" && chown postgres "$data" 2>/dev/null || exit 0
su postgres -s /bin/sh -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null 2>&1 || exit 0
su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -w -o '-p $port -k /tmp -c listen_addresses=127.0.0.1' -l $data/log start" >/dev/null 2>&1 || exit 0
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
