#!/usr/bin/env node
// A tiny command line wrapper around the npm `solc` package (solcjs) that behaves like the
// native solc binary for the two invocations agentwallet and py-solc-x use:
//   solc.js --version          prints the version like native solc
//   solc.js --standard-json    reads standard JSON on stdin, prints only the JSON output
// Other arguments (e.g. --allow-paths DIR) are accepted and ignored.
// Imports not given inline are resolved by a callback: `@openzeppelin/...` (and any other
// package path) from node_modules, everything else relative to the current directory.
'use strict';
const fs = require('fs');
const path = require('path');

function findNodeModules() {
  const candidates = [];
  if (process.env.AGENTWALLET_NODE_MODULES) candidates.push(process.env.AGENTWALLET_NODE_MODULES);
  let dir = process.cwd();
  for (;;) {
    candidates.push(path.join(dir, 'node_modules'));
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // The project root: agentwallet/_node/solc.js -> ../../node_modules
  candidates.push(path.resolve(__dirname, '..', '..', 'node_modules'));
  for (const c of candidates) {
    if (fs.existsSync(path.join(c, 'solc', 'package.json'))) return c;
  }
  process.stderr.write(
    'Error: the npm package `solc` was not found: run `npm ci` in the agentwallet project root ' +
    'or set AGENTWALLET_NODE_MODULES to a node_modules directory that contains it\n');
  process.exit(2);
}

const nodeModules = findNodeModules();
const solc = require(path.join(nodeModules, 'solc'));

function findImports(unitName) {
  const candidates = [];
  if (unitName.startsWith('@')) candidates.push(path.join(nodeModules, unitName));
  candidates.push(path.resolve(process.cwd(), unitName));
  for (const file of candidates) {
    if (fs.existsSync(file)) return { contents: fs.readFileSync(file, 'utf8') };
  }
  return { error: 'File not found: ' + unitName };
}

const args = process.argv.slice(2);
if (args.includes('--version')) {
  process.stdout.write(
    'solc, the solidity compiler commandline interface\nVersion: ' + solc.version() + '\n');
  process.exit(0);
}
if (!args.includes('--standard-json')) {
  process.stderr.write('Error: only --version and --standard-json are supported by solcjs\n');
  process.exit(2);
}
const input = fs.readFileSync(0, 'utf8');
process.stdout.write(solc.compile(input, { import: findImports }));
process.stdout.write('\n');
