// Compiles Solidity files with solcjs (npm `solc`, found through NODE_PATH) for
// the chain's tests: `node solc.js EVM_VERSION FILE.sol...` prints
// {"Name": {"bytecode": "0x..", "deployedBytecode": "0x.."}, ...} on stdout;
// compiler errors go to stderr with exit code 1.
'use strict';
const fs = require('fs');
const path = require('path');
const solc = require('solc');

const [evmVersion, ...files] = process.argv.slice(2);
const sources = {};
for (const f of files) sources[path.basename(f)] = { content: fs.readFileSync(f, 'utf8') };
const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion,
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['evm.bytecode.object', 'evm.deployedBytecode.object'] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === 'error');
if (errors.length) {
  for (const e of errors) process.stderr.write(e.formattedMessage + '\n');
  process.exit(1);
}
const result = { solc: solc.version() };
for (const file of Object.keys(out.contracts || {})) {
  for (const [name, c] of Object.entries(out.contracts[file])) {
    result[name] = {
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
    };
  }
}
process.stdout.write(JSON.stringify(result) + '\n');
