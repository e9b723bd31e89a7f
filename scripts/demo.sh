#!/usr/bin/env bash
# Install into .venv (if needed) and run the agentwallet demo on the embedded chain.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/_setup.sh"
exec agentwallet demo "$@"
