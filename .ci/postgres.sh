#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the state store tests and print its SQLAlchemy URL.
# Installs Debian's postgresql when missing. Prints nothing (and exits 0) if that is impossible here,
# so that CI still runs every other test and says loudly that PostgreSQL was skipped.
set -uo pipefail
port=55432
data=$(mktemp -d /tmp/followup-pg.XXXXXX)
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; } >/dev/null 2>&1 || exit 0
fi
bin=$(dirname "$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)")
chown postgres "$data" 2>/dev/null || exit 0
su postgres -s /bin/sh -c "$bin/initdb -D $data -A trust -U postgres" >/dev/null 2>&1 || exit 0
su postgres -s /bin/sh -c "$bin/pg_ctl -D $data -w -o '-p $port -k /tmp -c listen_addresses=127.0.0.1' -l $data/log start" >/dev/null 2>&1 || exit 0
echo "postgresql+psycopg://postgres@127.0.0.1:$port/postgres"
