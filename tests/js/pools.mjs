// A web3.js client watching for new pools the way a sniper does: `onLogs(programId)` for each DEX
// program, then the creation transaction (getParsedTransaction) and the pair's pools
// (getProgramAccounts with dataSize + memcmp on the mint fields). The pools are created by the
// project's own command, `python -m local.pools create`, in a child process.
//
//   node tests/js/pools.mjs http://127.0.0.1:8899 /path/to/python /path/to/worktree
//
// Prints one JSON line per check ({"check", "ok", ...}) and a last {"done": true, "failed": N}
// line; exits 1 when a check failed. tests/integration/test_js_clients.py runs it.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Connection, PublicKey } from "@solana/web3.js";

const [rpcUrl, python, worktree] = process.argv.slice(2);
if (!rpcUrl || !python || !worktree) {
  console.error("usage: node pools.mjs <rpc-url> <python> <worktree>");
  process.exit(2);
}
const run = promisify(execFile);
const connection = new Connection(rpcUrl, "confirmed");
const CHECK_TIMEOUT_MS = 90_000;
// Where each program's creation instruction names the pool and its two mints, and where the pool
// account keeps the mints (Raydium CPMM PoolState token_0/1_mint; DAMM v2 Pool token_a/b_mint).
const VENUES = {
  raydium_cpmm: {
    // The mainnet build the local chain runs, at its mainnet id (devnet's is DRaycpLY...).
    program: new PublicKey("CPMMoo8L3F4NbTegBCKVNunggL7H1ZpdTHKxQB5qKP1C"),
    instruction: "Program log: Instruction: Initialize",
    accounts: { pool: 3, mint0: 4, mint1: 5 },
    layout: { size: 637, mint0: 168, mint1: 200 },
  },
  meteora_damm_v2: {
    program: new PublicKey("cpamdpZCGKUy5JxQXB4dcpGPiikHawvSWAd6mEn1sGG"),
    instruction: "Program log: Instruction: InitializePool",
    accounts: { pool: 6, mint0: 8, mint1: 9 },
    layout: { size: 1112, mint0: 168, mint1: 200 },
  },
};
let failed = 0;

function report(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function check(name, body) {
  const started = Date.now();
  try {
    const detail = await within(body(), CHECK_TIMEOUT_MS, name);
    report({ check: name, ok: true, ms: Date.now() - started, ...(detail ?? {}) });
  } catch (error) {
    failed += 1;
    report({ check: name, ok: false, ms: Date.now() - started, error: String(error?.stack ?? error) });
  }
}

async function createPool(venue) {
  const { stdout } = await run(
    python,
    ["-m", "local.pools", "create", "--venue", venue, "--quote", "USDC", "--price", "0.5",
      "--liquidity", "200", "--rpc", rpcUrl, "--json"],
    { cwd: worktree, timeout: 60_000 },
  );
  return JSON.parse(stdout);
}

for (const [venue, spec] of Object.entries(VENUES)) {
  await check(`onLogs(${venue}) sees a pool created by python -m local.pools create`, async () => {
    const heard = new Map(); // signature -> logs entry
    const id = connection.onLogs(spec.program, (entry) => heard.set(entry.signature, entry), "confirmed");
    // web3.js registers the subscription asynchronously, with nothing to await: a pool created
    // before the node has it is (as on a validator) not notified. So create until one is heard.
    let created;
    let entry;
    try {
      for (let round = 0; round < 5 && !entry; round += 1) {
        created = await createPool(venue);
        for (let waited = 0; waited < 3_000 && !heard.has(created.signature); waited += 50) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        entry = heard.get(created.signature);
      }
    } finally {
      await connection.removeOnLogsListener(id);
    }
    assert(entry, `no logs notification for ${created?.signature}`);
    assert(entry.err === null, `the creation failed: ${JSON.stringify(entry.err)}`);
    assert(entry.logs.includes(spec.instruction), JSON.stringify(entry.logs));

    // The creation transaction names the pool and both mints at the program's account indexes.
    const parsed = await connection.getParsedTransaction(created.signature, {
      commitment: "confirmed",
      maxSupportedTransactionVersion: 0,
    });
    const ix = parsed.transaction.message.instructions.find((i) => i.programId.equals(spec.program));
    assert(ix && Array.isArray(ix.accounts), JSON.stringify(ix));
    const pool = ix.accounts[spec.accounts.pool].toBase58();
    const mint0 = ix.accounts[spec.accounts.mint0].toBase58();
    const mint1 = ix.accounts[spec.accounts.mint1].toBase58();
    assert(pool === created.pool, `pool ${pool} is not ${created.pool}`);
    assert(new Set([mint0, mint1]).has(created.mint), `mints ${mint0} ${mint1}`);
    assert(new Set([mint0, mint1]).has(created.quote_mint), `mints ${mint0} ${mint1}`);

    // The pair's pools, found the way a client looks for them.
    const found = await connection.getProgramAccounts(spec.program, {
      filters: [
        { dataSize: spec.layout.size },
        { memcmp: { offset: spec.layout.mint0, bytes: mint0 } },
        { memcmp: { offset: spec.layout.mint1, bytes: mint1 } },
      ],
    });
    assert(found.length === 1 && found[0].pubkey.toBase58() === pool, JSON.stringify(found));
    assert(found[0].account.owner.equals(spec.program), "owner");
    return { venue, signature: created.signature, pool, slot: parsed.slot, mint: created.mint };
  });
}

report({ done: true, failed });
process.exit(failed ? 1 : 0);
