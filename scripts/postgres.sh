#!/usr/bin/env bash
# A private PostgreSQL cluster on 127.0.0.1 for the MLflow server and Optuna studies (Debian's postgresql package).
#   scripts/postgres.sh start DIR [PORT]   create DIR (initdb) if needed, start it, create databases mlflow and optuna
#   scripts/postgres.sh stop DIR           stop it
# Connect as postgresql://postgres@127.0.0.1:PORT/{mlflow,optuna} (trust authentication on loopback only).
# PostgreSQL refuses to run as root: as root the cluster belongs to the system user postgres.
set -euo pipefail
cmd=${1:?usage: $0 start|stop DIR [PORT]}
dir=$(realpath -m "${2:?usage: $0 start|stop DIR [PORT]}")
port=${3:-5433}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [[ -z "$bin" ]]; then
  echo "error: PostgreSQL is not installed (Debian: apt-get install postgresql)" >&2
  exit 2
fi
as_owner() { if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }

case "$cmd" in
  start)
    if [[ ! -s "$dir/PG_VERSION" ]]; then
      mkdir -p "$dir"
      [[ $(id -u) == 0 ]] && chown postgres: "$dir"
      as_owner "$bin/initdb" -D "$dir" -U postgres --auth=trust --no-sync -E UTF8 >/dev/null
    fi
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null
    for db in mlflow optuna; do
      as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1 \
        || as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db"
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
