#!/usr/bin/env bash
# Run a command with a throwaway PostgreSQL cluster (Debian's package, loopback only) and
# ALLIANCE_TEST_DATABASE_URL pointing at it; the cluster is removed afterwards.
#   scripts/with-postgres.sh make test-postgres
# Installs the server package with apt-get when it is missing (CI machines start without it).
set -euo pipefail

postgres_bin_dir() {
    # The newest installed server (the package installs /usr/lib/postgresql/N/bin/initdb;
    # a client-only install has that directory without initdb).
    find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' -type f 2>/dev/null |
        sort -V | tail -n 1 | xargs -r dirname
}

if [ -z "$(postgres_bin_dir)" ]; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi
PG_BIN="$(postgres_bin_dir)"
test -x "$PG_BIN/initdb" || { echo "no PostgreSQL server binaries found" >&2; exit 1; }

# The server refuses to run as root: as root, run it as the package's `postgres` user.
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    as_db_user() { runuser -u postgres -- "$@"; }
else
    as_db_user() { "$@"; }
fi

PG_DIR="$(mktemp -d /tmp/alliance-postgres.XXXXXX)"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$PG_DIR"
fi
PG_PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

stop_postgres() {
    as_db_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    rm -rf "$PG_DIR"
}
trap stop_postgres EXIT

as_db_user "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust --no-sync >/dev/null
# Two gateways (pools of 20 + 20) can be up at once in the suite: room for both and more.
as_db_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR -c max_connections=200 -c fsync=off" \
    start

export ALLIANCE_TEST_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/alliance_test"
"$@"
