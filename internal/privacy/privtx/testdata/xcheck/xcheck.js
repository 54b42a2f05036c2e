// Reads an array of private transactions (JSON) on stdin, builds and signs
// each with web3js-quorum as priv.generateAndSendRawTransaction does, and
// writes, for each, the signed bytes, the hash and (for privateFor) the
// privacy group id the client derives. Run by TestCrossCheckWeb3jsQuorum.
const PrivateTransaction = require("web3js-quorum/src/privateTransaction");
const Utils = require("web3js-quorum/src/utils");

const { generatePrivacyGroup } = Utils({ utils: {} }).utils;

let input = "";
process.stdin.on("data", (chunk) => {
  input += chunk;
});
process.stdin.on("end", () => {
  const out = JSON.parse(input).map((c) => {
    const tx = new PrivateTransaction();
    tx.nonce = c.nonce;
    tx.gasPrice = c.gasPrice;
    tx.gasLimit = c.gasLimit;
    tx.to = c.to;
    tx.value = c.value;
    tx.data = c.data;
    tx._chainId = c.chainId;
    tx.privateFrom = c.privateFrom;
    if (c.privateFor) tx.privateFor = c.privateFor;
    if (c.privacyGroupId) tx.privacyGroupId = c.privacyGroupId;
    tx.restriction = c.restriction;
    tx.sign(Buffer.from(c.privateKey, "hex"));
    return {
      raw: `0x${tx.serialize().toString("hex")}`,
      hash: `0x${tx.hash().toString("hex")}`,
      sender: `0x${tx.getSenderAddress().toString("hex")}`,
      groupId: c.privateFor
        ? generatePrivacyGroup({ privateFrom: c.privateFrom, privateFor: c.privateFor })
        : c.privacyGroupId,
    };
  });
  process.stdout.write(JSON.stringify(out));
});
