// Compile the test contracts with solcjs (standard JSON) into <Name>.json {abi, bytecode}.
// Usage: NODE_PATH=/tmp/solc/node_modules node tests/contracts/build.js
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const dir = __dirname;
// Every .sol file here, each holding the contract of its name.
const names = fs.readdirSync(dir).filter((f) => f.endsWith(".sol")).map((f) => f.slice(0, -4)).sort();
const sources = {};
for (const n of names) sources[`${n}.sol`] = { content: fs.readFileSync(path.join(dir, `${n}.sol`), "utf8") };
const input = {
  language: "Solidity",
  sources,
  settings: {
    evmVersion: "shanghai",
    optimizer: { enabled: true, runs: 200 },
    metadata: { bytecodeHash: "none" },
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const out = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (out.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
for (const n of names) {
  const c = out.contracts[`${n}.sol`][n];
  const artifact = { compiler: `solc ${solc.version()}`, evmVersion: "shanghai", abi: c.abi, bytecode: "0x" + c.evm.bytecode.object };
  fs.writeFileSync(path.join(dir, `${n}.json`), JSON.stringify(artifact, null, 1) + "\n");
  console.log(`${n}: ${c.evm.bytecode.object.length / 2} bytes`);
}
