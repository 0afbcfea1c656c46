#!/usr/bin/env bash
# A private PostgreSQL cluster on 127.0.0.1 for the MLflow server and Optuna studies (Debian's postgresql package).
#   scripts/postgres.sh start DIR [PORT]   create DIR (initdb) if needed, start it, create databases mlflow,
#                                          mlflow_auth and optuna; print the URL
#   scripts/postgres.sh stop DIR           stop it
# Password authentication only (scram-sha-256): the role postgres gets a generated password, kept in DIR.pgpass
# (libpq's pgpass format, readable by the caller only). Connect as postgresql://postgres@127.0.0.1:PORT/DB with
# PGPASSFILE=DIR.pgpass. A cluster made with trust authentication by an older version is converted on start.
# PostgreSQL refuses to run as root: as root the cluster belongs to the system user postgres.
set -euo pipefail
cmd=${1:?usage: $0 start|stop DIR [PORT]}
dir=$(realpath -m "${2:?usage: $0 start|stop DIR [PORT]}")
port=${3:-5433}
pass="$dir.pgpass"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$bin" ]]; then
  echo "error: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  exit 2
fi
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
password() { cut -d: -f5- "$pass"; }
sql() { as_owner env PGPASSWORD="$(password)" "$bin/$1" -h 127.0.0.1 -p "$port" -U postgres "${@:2}"; }

case "$cmd" in
  start)
    mkdir -p "$(dirname "$dir")"
    if [[ ! -s "$pass" ]]; then
      (umask 077; echo "127.0.0.1:*:*:postgres:$(head -c 24 /dev/urandom | base64 | tr -d '/+=')" > "$pass")
    fi
    if [[ ! -s "$dir/PG_VERSION" ]]; then
      mkdir -p "$dir"
      pwfile=$(umask 077; mktemp)
      password > "$pwfile"
      if [[ $(id -u) == 0 ]]; then chown postgres: "$dir" "$pwfile"; fi
      as_owner "$bin/initdb" -D "$dir" -U postgres --auth=scram-sha-256 --pwfile="$pwfile" --no-sync -E UTF8 >/dev/null
      rm -f "$pwfile"
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null
    if as_owner grep -qE '^[^#].*\btrust\b' "$dir/pg_hba.conf"; then  # an older trust cluster: set the password
      as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "ALTER ROLE postgres PASSWORD '$(password)'"
      as_owner sed -i -E 's/\btrust\b/scram-sha-256/' "$dir/pg_hba.conf"
      as_owner "$bin/pg_ctl" -D "$dir" reload >/dev/null
    fi
    for db in mlflow mlflow_auth optuna; do
      sql psql -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" postgres | grep -q 1 || sql createdb "$db"
    done
    echo "postgresql://postgres@127.0.0.1:$port"
    ;;
  stop)
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null
    ;;
  *)
    echo "error: unknown command $cmd (start or stop)" >&2
    exit 2
    ;;
esac
