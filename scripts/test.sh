#!/usr/bin/env bash
# Install everything the tests need (PostgreSQL server, Chromium, the Python dev extras and the
# sidebar's build), check lint and types, and run the whole test suite. `.ci/run` calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-deps.sh
# torch first, pinned to the CPU build this machine kind keeps on disk, then the extras.
python -m pip install --quiet "torch==2.13.0"
# builds the JupyterLab sidebar (npm, from the npm registry only) into lakebook/labextension/
python -m pip install --quiet -e ".[dev,embeddings]"
[ -d labextension/node_modules ] || (cd labextension && npm ci --no-audit --no-fund)

(cd labextension && npx tsc --noEmit && npm run --silent lint)

ruff check lakebook tests bench
ruff format --check lakebook tests bench
mypy

set +e
python -m pytest -p no:cacheprovider "$@"
status=$?
set -e
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests: failing, an empty run proves nothing." >&2
    exit 1
fi
exit "$status"
