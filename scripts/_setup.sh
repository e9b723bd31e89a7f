# Sourced by scripts/demo.sh and scripts/test.sh: make .venv and node_modules if missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
if [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund
fi
