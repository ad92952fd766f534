#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for the tests, on 127.0.0.1, and prints its URL.
# Installs Debian's postgresql package when the machine has no server yet.
# Usage: url=$(scripts/postgres.sh start DIR)   |   scripts/postgres.sh stop DIR
set -euo pipefail
cmd=${1:?start or stop}
dir=${2:?a directory for the cluster}
port=${NETMIND_PG_PORT:-54329}

bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ "$cmd" = stop ]; then
  [ -n "$bin" ] && [ -d "$dir/data" ] && su postgres -c "$bin/pg_ctl -D '$dir/data' -m immediate stop" >/dev/null 2>&1 || true
  exit 0
fi
if [ -z "$bin" ]; then
  echo "installing postgresql from Debian's packages" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
fi
mkdir -p "$dir"
chown postgres "$dir"
if [ ! -d "$dir/data" ]; then
  su postgres -c "$bin/initdb -D '$dir/data' -U postgres --auth=trust -E UTF8" >/dev/null
fi
su postgres -c "$bin/pg_ctl -D '$dir/data' -l '$dir/log' -w -o \"-p $port -k '$dir' -c listen_addresses=127.0.0.1 -c fsync=on\" start" >/dev/null
echo "postgres://postgres@127.0.0.1:$port/postgres"
