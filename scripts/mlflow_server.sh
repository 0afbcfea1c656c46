#!/usr/bin/env bash
# The team's MLflow server with MLflow's basic-auth app, on the PostgreSQL cluster of scripts/postgres.sh.
#   scripts/mlflow_server.sh PGDATA PGPORT ARTIFACTS PORT
# Secrets are generated once into PGDATA.mlflow/ (readable by the caller only): the Flask secret key and the
# password of the admin user `admin` (file admin_password). Clients authenticate with
#   MLFLOW_TRACKING_USERNAME=admin MLFLOW_TRACKING_PASSWORD=$(cat PGDATA.mlflow/admin_password)
# Run metadata go to the database mlflow, users and permissions to mlflow_auth, artifacts to ARTIFACTS.
# A verified password is cached 60 s per worker (auth_cache_ttl_seconds): without it every request hashes the password
# again, which took more CPU than the steps themselves in a tiny main; a password change reaches the other workers
# within that minute.
set -euo pipefail
pgdata=$(realpath -m "${1:?usage: $0 PGDATA PGPORT ARTIFACTS PORT}")
pgport=${2:?usage: $0 PGDATA PGPORT ARTIFACTS PORT}
artifacts=${3:?usage: $0 PGDATA PGPORT ARTIFACTS PORT}
port=${4:?usage: $0 PGDATA PGPORT ARTIFACTS PORT}
secrets="$pgdata.mlflow"
(
  umask 077
  mkdir -p "$secrets"
  for name in secret_key admin_password; do
    [[ -s "$secrets/$name" ]] || head -c 24 /dev/urandom | base64 | tr -d '/+=' > "$secrets/$name"
  done
  cat > "$secrets/basic_auth.ini" <<INI
[mlflow]
default_permission = EDIT
database_uri = postgresql://postgres@127.0.0.1:$pgport/mlflow_auth
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
INI
)
export PGPASSFILE="$pgdata.pgpass"
export MLFLOW_AUTH_CONFIG_PATH="$secrets/basic_auth.ini"
MLFLOW_FLASK_SERVER_SECRET_KEY=$(cat "$secrets/secret_key")
MLFLOW_AUTH_ADMIN_PASSWORD=$(cat "$secrets/admin_password")
export MLFLOW_FLASK_SERVER_SECRET_KEY MLFLOW_AUTH_ADMIN_PASSWORD
exec mlflow server --app-name basic-auth --backend-store-uri "postgresql://postgres@127.0.0.1:$pgport/mlflow" \
  --artifacts-destination "$artifacts" --host 127.0.0.1 --port "$port"
