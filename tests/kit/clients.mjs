// Drives the local chain with @solana/kit and the @solana-program clients, as a new user of kit
// does: airdrop, sendAndConfirmTransactionFactory at each commitment, an SPL token mint and
// transfer, getBlockTime(await getSlot()) at each commitment, and every subscription kit offers
// that the chain serves.
//
//   node tests/kit/clients.mjs http://127.0.0.1:8899 ws://127.0.0.1:8900
//
// Prints one JSON line per check ({"check", "ok", ...}) and a last {"done": true, "failed": N}
// line; exits 1 when a check failed. tests/integration/test_kit_clients.py runs it.
import {
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
import { getCreateAccountInstruction, getTransferSolInstruction } from "@solana-program/system";
import {
  TOKEN_PROGRAM_ADDRESS,
  fetchToken,
  findAssociatedTokenPda,
  getCreateAssociatedTokenIdempotentInstructionAsync,
  getInitializeMintInstruction,
  getMintSize,
  getMintToInstruction,
  getTransferInstruction,
} from "@solana-program/token";

const [rpcUrl, wsUrl] = process.argv.slice(2);
if (!rpcUrl || !wsUrl) {
  console.error("usage: node clients.mjs <rpc-url> <ws-url>");
  process.exit(2);
}
const CHECK_TIMEOUT_MS = 60_000;
const COMMITMENTS = ["processed", "confirmed", "finalized"];
const rpc = createSolanaRpc(rpcUrl);
const rpcSubscriptions = createSolanaRpcSubscriptions(wsUrl);
const airdrop = airdropFactory({ rpc, rpcSubscriptions });
const sendAndConfirm = sendAndConfirmTransactionFactory({ rpc, rpcSubscriptions });
let failed = 0;

// JSON with kit's bigints as strings.
function show(value) {
  return JSON.stringify(value, (_k, v) => (typeof v === "bigint" ? v.toString() : v));
}

function report(line) {
  process.stdout.write(show(line) + "\n");
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out`)), CHECK_TIMEOUT_MS);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function check(name, body) {
  const started = Date.now();
  try {
    const detail = await withTimeout(body(), name);
    report({ check: name, ok: true, ms: Date.now() - started, ...(detail ?? {}) });
    return detail;
  } catch (error) {
    failed += 1;
    const why = { cause: error?.cause, context: error?.context }; // kit's SolanaError says why here
    report({ check: name, ok: false, ms: Date.now() - started, error: `${error?.stack ?? error} ${show(why)}` });
    return undefined;
  }
}

// The first notification of a kit subscription, then the subscription is closed.
async function subscribeFirst(request) {
  const abort = new AbortController();
  const notifications = await request.subscribe({ abortSignal: abort.signal });
  return {
    first: (async () => {
      try {
        for await (const note of notifications) return note;
        throw new Error("the subscription ended without a notification");
      } finally {
        abort.abort();
      }
    })(),
  };
}

async function send(instructions, signer, commitment) {
  const { value: latest } = await rpc.getLatestBlockhash({ commitment }).send();
  const message = pipe(
    createTransactionMessage({ version: 0 }),
    (m) => setTransactionMessageFeePayerSigner(signer, m),
    (m) => setTransactionMessageLifetimeUsingBlockhash(latest, m),
    (m) => appendTransactionMessageInstructions(instructions, m),
  );
  const transaction = await signTransactionMessageWithSigners(message);
  await sendAndConfirm(transaction, { commitment });
  return getSignatureFromTransaction(transaction);
}

const payer = await generateKeyPairSigner();
const recipient = await generateKeyPairSigner();

await check("airdrop", async () => {
  const signature = await airdrop({
    recipientAddress: payer.address,
    lamports: lamports(10_000_000_000n),
    commitment: "confirmed",
  });
  const { value: balance } = await rpc.getBalance(payer.address, { commitment: "confirmed" }).send();
  assert(balance === 10_000_000_000n, `balance ${balance}`);
  return { signature };
});

for (const [index, commitment] of COMMITMENTS.entries()) {
  await check(`sendAndConfirmTransaction at ${commitment}`, async () => {
    // A different amount each time: two transfers with one blockhash (the chain need not have
    // produced a block between them) would be the same transaction, which a validator refuses
    // as AlreadyProcessed.
    const amount = 1_000_000n + BigInt(index);
    const signature = await send(
      [getTransferSolInstruction({ source: payer, destination: recipient.address, amount })],
      payer,
      commitment,
    );
    const { value: [status] } = await rpc.getSignatureStatuses([signature]).send();
    assert(status !== null && status.err === null, show(status));
    return { signature };
  });
}

for (const commitment of COMMITMENTS) {
  await check(`getBlockTime(await getSlot()) at ${commitment}`, async () => {
    const slot = await rpc.getSlot({ commitment }).send();
    const time = await rpc.getBlockTime(slot).send();
    assert(typeof time === "bigint" && time > 0n, `block time ${time}`);
    if (commitment !== "processed") {
      const block = await rpc.getBlock(slot, { commitment, maxSupportedTransactionVersion: 0 }).send();
      assert(block !== null && block.blockTime === time, show(block?.blockTime));
    }
    return { slot, time };
  });
}

await check("token: create a mint, an associated account, mintTo, transfer", async () => {
  const mint = await generateKeyPairSigner();
  const space = BigInt(getMintSize());
  const rent = await rpc.getMinimumBalanceForRentExemption(space).send();
  await send(
    [
      getCreateAccountInstruction({
        payer,
        newAccount: mint,
        lamports: rent,
        space,
        programAddress: TOKEN_PROGRAM_ADDRESS,
      }),
      getInitializeMintInstruction({ mint: mint.address, decimals: 6, mintAuthority: payer.address }),
    ],
    payer,
    "confirmed",
  );
  const [source] = await findAssociatedTokenPda({
    owner: payer.address,
    mint: mint.address,
    tokenProgram: TOKEN_PROGRAM_ADDRESS,
  });
  const [destination] = await findAssociatedTokenPda({
    owner: recipient.address,
    mint: mint.address,
    tokenProgram: TOKEN_PROGRAM_ADDRESS,
  });
  const signature = await send(
    [
      await getCreateAssociatedTokenIdempotentInstructionAsync({ payer, owner: payer.address, mint: mint.address }),
      await getCreateAssociatedTokenIdempotentInstructionAsync({
        payer,
        owner: recipient.address,
        mint: mint.address,
      }),
      getMintToInstruction({ mint: mint.address, token: source, mintAuthority: payer, amount: 5_000_000n }),
      getTransferInstruction({ source, destination, authority: payer, amount: 1_250_000n }),
    ],
    payer,
    "confirmed",
  );
  const received = await fetchToken(rpc, destination, { commitment: "confirmed" });
  assert(received.data.amount === 1_250_000n, `received ${received.data.amount}`);
  const { value: balance } = await rpc.getTokenAccountBalance(source, { commitment: "confirmed" }).send();
  assert(balance.amount === "3750000", show(balance));
  return { mint: mint.address, signature };
});

await check("subscriptions: account, logs, program, signature, slot, root, slotsUpdates", async () => {
  const watched = await generateKeyPairSigner();
  const account = await subscribeFirst(
    rpcSubscriptions.accountNotifications(watched.address, { commitment: "confirmed", encoding: "base64" }),
  );
  const logs = await subscribeFirst(
    rpcSubscriptions.logsNotifications({ mentions: [watched.address] }, { commitment: "confirmed" }),
  );
  const program = await subscribeFirst(
    rpcSubscriptions.programNotifications(address("11111111111111111111111111111111"), {
      commitment: "confirmed",
      encoding: "base64",
      filters: [{ dataSize: 0n }],
    }),
  );
  const slot = await subscribeFirst(rpcSubscriptions.slotNotifications());
  const root = await subscribeFirst(rpcSubscriptions.rootNotifications());
  const slotsUpdates = await subscribeFirst(rpcSubscriptions.slotsUpdatesNotifications());
  const { value: latest } = await rpc.getLatestBlockhash({ commitment: "confirmed" }).send();
  const transaction = await signTransactionMessageWithSigners(
    pipe(
      createTransactionMessage({ version: 0 }),
      (m) => setTransactionMessageFeePayerSigner(payer, m),
      (m) => setTransactionMessageLifetimeUsingBlockhash(latest, m),
      (m) =>
        appendTransactionMessageInstructions(
          [getTransferSolInstruction({ source: payer, destination: watched.address, amount: 2_000_000_000n })],
          m,
        ),
    ),
  );
  const signature = getSignatureFromTransaction(transaction);
  const signed = await subscribeFirst(rpcSubscriptions.signatureNotifications(signature, { commitment: "confirmed" }));
  await sendAndConfirm(transaction, { commitment: "confirmed" });
  const accountNote = await account.first;
  assert(accountNote.value.lamports === 2_000_000_000n, show(accountNote.value.lamports));
  const logsNote = await logs.first;
  assert(logsNote.value.signature === signature, logsNote.value.signature);
  const programNote = await program.first;
  assert(typeof programNote.value.pubkey === "string", "program notification");
  const signatureNote = await signed.first;
  assert(signatureNote.value.err === null, show(signatureNote.value));
  const slotNote = await slot.first;
  assert(slotNote.slot > slotNote.parent, "slot notification");
  const rootNote = await root.first;
  assert(typeof rootNote === "bigint", typeof rootNote);
  const updateNote = await slotsUpdates.first;
  assert(["frozen", "createdBank", "optimisticConfirmation", "root"].includes(updateNote.type), updateNote.type);
  return { signature, root: rootNote, update: updateNote.type };
});

report({ done: true, failed });
process.exit(failed ? 1 : 0);
