// Drives the local chain with @solana/kit 2.3 alone (no program clients: the @solana-program
// releases the kit 8 suite uses need kit 8), as a user still on kit 2.x does: getSlot and
// getBlockTime at each commitment, an airdrop, and sendAndConfirmTransactionFactory at each
// commitment of a System transfer whose instruction is built by hand, its balance then read at
// that commitment.
//
//   node tests/kit23/clients.mjs http://127.0.0.1:8899 ws://127.0.0.1:8900
//
// Prints one JSON line per check ({"check", "ok", ...}) and a last {"done": true, "failed": N}
// line; exits 1 when a check failed. tests/integration/test_kit_clients.py runs it.
import {
  AccountRole,
  address,
  airdropFactory,
  appendTransactionMessageInstructions,
  createSolanaRpc,
  createSolanaRpcSubscriptions,
  createTransactionMessage,
  generateKeyPairSigner,
  getSignatureFromTransaction,
  lamports,
  pipe,
  sendAndConfirmTransactionFactory,
  setTransactionMessageFeePayerSigner,
  setTransactionMessageLifetimeUsingBlockhash,
  signTransactionMessageWithSigners,
} from "@solana/kit";

const [rpcUrl, wsUrl] = process.argv.slice(2);
if (!rpcUrl || !wsUrl) {
  console.error("usage: node clients.mjs <rpc-url> <ws-url>");
  process.exit(2);
}
const CHECK_TIMEOUT_MS = 60_000;
const COMMITMENTS = ["processed", "confirmed", "finalized"];
const SYSTEM_PROGRAM = address("11111111111111111111111111111111");
const rpc = createSolanaRpc(rpcUrl);
const rpcSubscriptions = createSolanaRpcSubscriptions(wsUrl);
const airdrop = airdropFactory({ rpc, rpcSubscriptions });
const sendAndConfirm = sendAndConfirmTransactionFactory({ rpc, rpcSubscriptions });
let failed = 0;

function show(value) {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

function report(line) {
  process.stdout.write(show(line) + "\n");
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

async function check(name, body) {
  const started = Date.now();
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${name}: timed out`)), CHECK_TIMEOUT_MS);
  });
  try {
    const detail = await Promise.race([body(), timeout]);
    report({ check: name, ok: true, ms: Date.now() - started, ...(detail ?? {}) });
  } catch (error) {
    failed += 1;
    const why = { cause: error?.cause, context: error?.context };
    report({ check: name, ok: false, ms: Date.now() - started, error: `${error?.stack ?? error} ${show(why)}` });
  } finally {
    clearTimeout(timer);
  }
}

// The System program's Transfer: instruction 2 (u32 little-endian), then the lamports (u64).
function transferInstruction(source, destination, amount) {
  const data = new Uint8Array(12);
  const view = new DataView(data.buffer);
  view.setUint32(0, 2, true);
  view.setBigUint64(4, amount, true);
  return {
    programAddress: SYSTEM_PROGRAM,
    accounts: [
      { address: source.address, role: AccountRole.WRITABLE_SIGNER, signer: source },
      { address: destination, role: AccountRole.WRITABLE },
    ],
    data,
  };
}

for (const commitment of COMMITMENTS) {
  await check(`getBlockTime(await getSlot()) at ${commitment}`, async () => {
    const slot = await rpc.getSlot({ commitment }).send();
    const time = await rpc.getBlockTime(slot).send();
    assert(typeof time === "bigint" && time > 0n, `block time ${time}`);
    return { slot, time };
  });
}

const payer = await generateKeyPairSigner();
await check("airdrop", async () => {
  const signature = await airdrop({
    recipientAddress: payer.address,
    lamports: lamports(5_000_000_000n),
    commitment: "confirmed",
  });
  const { value: balance } = await rpc.getBalance(payer.address, { commitment: "confirmed" }).send();
  assert(balance === 5_000_000_000n, `balance ${balance}`);
  return { signature };
});

for (const [index, commitment] of COMMITMENTS.entries()) {
  await check(`sendAndConfirmTransaction of a hand-built transfer at ${commitment}`, async () => {
    const recipient = (await generateKeyPairSigner()).address;
    const amount = BigInt(1_000_000 * (index + 1));
    const { value: latest } = await rpc.getLatestBlockhash({ commitment }).send();
    const transaction = await signTransactionMessageWithSigners(
      pipe(
        createTransactionMessage({ version: "legacy" }),
        (m) => setTransactionMessageFeePayerSigner(payer, m),
        (m) => setTransactionMessageLifetimeUsingBlockhash(latest, m),
        (m) => appendTransactionMessageInstructions([transferInstruction(payer, recipient, amount)], m),
      ),
    );
    await sendAndConfirm(transaction, { commitment });
    // Confirmed at this level: a read at the same level sees the transfer.
    const { value: balance } = await rpc.getBalance(recipient, { commitment }).send();
    assert(balance === amount, `balance ${balance} at ${commitment}`);
    return { signature: getSignatureFromTransaction(transaction) };
  });
}

report({ done: true, failed });
process.exit(failed ? 1 : 0);
