#!/usr/bin/env bash
# Install into .venv (if needed) and run the whole test suite (embedded chain and anvil).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
exec python -m pytest -q "$@"
