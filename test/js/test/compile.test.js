// The contract compiles offline with the pinned solc-js and OpenZeppelin sources.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { compileToken, readImport, EVM_VERSION, SOLC_VERSION } from '../lib/compile.js';
import { INSUFFICIENT_BALANCE_SELECTOR, TRANSFER_TOPIC } from '../lib/dev.js';
import { ethers } from 'ethers';

describe('solc-js compiles the OpenZeppelin ERC-20', () => {
  it('uses the pinned compiler and EVM version', () => {
    const c = compileToken();
    assert.match(c.solcVersion, new RegExp('^' + SOLC_VERSION.replaceAll('.', '\\.') + '\\+commit\\.'));
    assert.equal(c.evmVersion, 'osaka');
    assert.equal(c.metadata.settings.evmVersion, EVM_VERSION);
    assert.equal(c.metadata.compiler.version, c.solcVersion.replace('.Emscripten.clang', ''));
  });

  it('resolves the OpenZeppelin imports from node_modules', () => {
    const c = compileToken();
    assert.deepEqual(c.sources.sort(), [
      '@openzeppelin/contracts/interfaces/draft-IERC6093.sol',
      '@openzeppelin/contracts/token/ERC20/ERC20.sol',
      '@openzeppelin/contracts/token/ERC20/IERC20.sol',
      '@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol',
      '@openzeppelin/contracts/utils/Context.sol',
      'Token.sol',
    ]);
    assert.match(readImport('@openzeppelin/contracts/token/ERC20/ERC20.sol').contents, /abstract contract ERC20 is/);
    assert.match(readImport('../../../etc/passwd').error, /outside node_modules/);
    assert.match(readImport('@openzeppelin/contracts/NoSuchFile.sol').error, /ENOENT/);
  });

  it('produces the ERC-20 ABI, custom errors and bytecode', () => {
    const c = compileToken();
    const iface = new ethers.Interface(c.abi);
    assert.deepEqual(
      iface.fragments.filter((f) => f.type === 'function').map((f) => f.format('sighash')).sort(),
      [
        'allowance(address,address)',
        'approve(address,uint256)',
        'balanceOf(address)',
        'decimals()',
        'name()',
        'symbol()',
        'totalSupply()',
        'transfer(address,uint256)',
        'transferFrom(address,address,uint256)',
      ],
    );
    assert.deepEqual(iface.deploy.inputs.map((p) => p.type), ['uint256']);
    assert.equal(iface.getEvent('Transfer').topicHash, TRANSFER_TOPIC);
    assert.equal(iface.getError('ERC20InsufficientBalance').selector, INSUFFICIENT_BALANCE_SELECTOR);
    assert.equal(iface.getError('ERC20InsufficientBalance').format('sighash'), 'ERC20InsufficientBalance(address,uint256,uint256)');
    assert.match(c.bytecode, /^0x(?:[0-9a-f]{2})+$/);
    assert.match(c.deployedBytecode, /^0x(?:[0-9a-f]{2})+$/);
    assert.ok(c.bytecode.length > c.deployedBytecode.length, 'init code embeds the runtime code');
    assert.ok(c.bytecode.includes(c.deployedBytecode.slice(2, 200)), 'init code contains the runtime code');
    // The runtime code fits EIP-170's 24,576-byte limit.
    assert.ok((c.deployedBytecode.length - 2) / 2 < 24_576);
  });
});
