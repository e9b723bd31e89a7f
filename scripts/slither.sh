#!/usr/bin/env bash
# Static analysis of contracts/ with Slither, from the build-info file that `agentwallet compile`
# writes (Slither cannot drive solcjs itself). Slither 0.11.6 pins web3<8, so it lives in its own
# virtual environment (.venv-slither). Fails on any medium or high finding that is not justified
# in the code with a slither-disable comment (each one is explained in docs/contracts.md).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$(pwd)
if [ ! -x .venv-slither/bin/slither ]; then
    python3 -m venv .venv-slither
    .venv-slither/bin/python -m pip install --quiet --disable-pip-version-check "slither-analyzer==0.11.6" \
        >.venv-slither/install.log 2>&1 || { cat .venv-slither/install.log; exit 1; }
fi
if [ ! -f build/build-info/agentwallet.json ] || [ -n "$(find contracts -newer build/build-info/agentwallet.json -name '*.sol')" ]; then
    .venv/bin/python -m agentwallet compile >/dev/null
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Slither's Hardhat reader wants artifacts/build-info/ and the imported files beside it.
mkdir -p "$work/artifacts/build-info"
cp build/build-info/agentwallet.json "$work/artifacts/build-info/"
ln -s "$root/contracts" "$work/contracts"
ln -s "$root/node_modules" "$work/node_modules"
ln -s "$root/node_modules/@openzeppelin" "$work/@openzeppelin"
echo '{}' > "$work/hardhat.config.js"
cd "$work"
# Hardhat itself is not installed: Slither tries it, says so, and reads the build-info anyway.
.venv-slither() { "$root/.venv-slither/bin/slither" "$@"; }
.venv-slither . --hardhat-ignore-compile \
    --filter-paths "node_modules|@openzeppelin|contracts/test" \
    --exclude-informational --exclude-optimization --fail-medium 2> >(grep -v -e '^Problem executing hardhat' -e '^npm error' >&2)
