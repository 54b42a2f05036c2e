// Compiles contracts/Token.sol (an OpenZeppelin ERC-20) with solc-js through
// standard JSON input, offline: imports are read from this folder's node_modules.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import solc from 'solc';

const here = path.dirname(fileURLToPath(import.meta.url));
export const JS_ROOT = path.resolve(here, '..');
const NODE_MODULES = path.join(JS_ROOT, 'node_modules');

// The node runs go-ethereum v1.17.10 with every fork through Osaka active from
// block 0, and solc 0.8.37 accepts "osaka", so the bytecode targets Osaka.
export const EVM_VERSION = 'osaka';
export const SOLC_VERSION = '0.8.37';

// Resolves an import such as "@openzeppelin/contracts/token/ERC20/ERC20.sol"
// inside node_modules, and nowhere else.
export function readImport(importPath) {
  const file = path.resolve(NODE_MODULES, importPath);
  if (!file.startsWith(NODE_MODULES + path.sep)) {
    return { error: `import ${importPath} is outside node_modules` };
  }
  try {
    return { contents: fs.readFileSync(file, 'utf8') };
  } catch (err) {
    return { error: `import ${importPath}: ${err.message}` };
  }
}

let cached;

// compileToken returns { abi, bytecode, deployedBytecode, solcVersion, evmVersion,
// sources } for the Token contract. It throws with solc's messages on any error.
export function compileToken() {
  if (cached) return cached;
  const input = {
    language: 'Solidity',
    sources: {
      'Token.sol': { content: fs.readFileSync(path.join(JS_ROOT, 'contracts', 'Token.sol'), 'utf8') },
    },
    settings: {
      evmVersion: EVM_VERSION,
      optimizer: { enabled: true, runs: 200 },
      outputSelection: {
        '*': { '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'metadata'] },
      },
    },
  };
  const output = JSON.parse(solc.compile(JSON.stringify(input), { import: readImport }));
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) {
    throw new Error('solc: ' + errors.map((e) => e.formattedMessage).join('\n'));
  }
  const token = output.contracts?.['Token.sol']?.Token;
  if (!token) throw new Error('solc produced no Token contract');
  cached = {
    abi: token.abi,
    bytecode: '0x' + token.evm.bytecode.object,
    deployedBytecode: '0x' + token.evm.deployedBytecode.object,
    metadata: JSON.parse(token.metadata),
    solcVersion: solc.version(),
    evmVersion: EVM_VERSION,
    sources: Object.keys(output.sources),
  };
  return cached;
}
