#!/usr/bin/env bash
# Builds the virtualenv the MLflow tracking server of the tests runs from
# (tests/mlflowserver.py): $MODELOPS_CACHE/mlflow-$MLFLOW_VERSION/venv with the full
# `mlflow` package pinned in hack/versions.env, and its `auth` extra (Flask-WTF) for the
# basic-auth app (`mlflow server --app-name basic-auth`). modelops itself never imports mlflow (its
# client speaks plain REST); this venv only serves the registry the tests talk to.
# Skipped when the venv is complete (its marker file, written last, names the version).
# Usage: hack/build-mlflow.sh [--force]   Prints the venv's path.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_force "$@"

mlflow_dir="$MODELOPS_CACHE/mlflow-$MLFLOW_VERSION"
venv="$mlflow_dir/venv"
marker="$mlflow_dir/.complete"
stamp="mlflow[auth]==$MLFLOW_VERSION"
mkdir -p "$mlflow_dir"
# One builder at a time (parallel test runs may all call us).
exec 9>"$mlflow_dir/.lock"
flock 9

if [[ $force == 0 && -x "$venv/bin/mlflow" && "$(cat "$marker" 2>/dev/null)" == "$stamp" ]]; then
  echo "$venv"
  exit 0
fi

log "building the MLflow $MLFLOW_VERSION server venv in $venv"
start=$SECONDS
rm -rf "$venv" "$marker"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$stamp"
installed="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))')"
[[ "$installed" == "$MLFLOW_VERSION" ]] || die "installed mlflow $installed, not $MLFLOW_VERSION"
"$venv/bin/python" -c 'import flask_wtf' || die "mlflow's auth extra (Flask-WTF) is missing"
"$venv/bin/mlflow" server --help >/dev/null || die "$venv/bin/mlflow server does not run"
echo "$stamp" >"$marker"
log "built the MLflow $MLFLOW_VERSION venv in $((SECONDS - start))s"
echo "$venv"
