// Drives the local chain the way users' tools do: @solana/web3.js 1.x and @solana/spl-token,
// pointed at the RPC URL only (the PubSub URL is derived as web3.js derives it: port + 1).
//
//   node tests/js/clients.mjs http://127.0.0.1:8899
//
// Prints one JSON line per check ({"check", "ok", ...}) and a last {"done": true, "failed": N}
// line; exits 1 when a check failed. tests/integration/test_js_clients.py runs it.
import {
  Connection,
  Keypair,
  LAMPORTS_PER_SOL,
  SystemProgram,
  Transaction,
  TransactionMessage,
  VersionedTransaction,
  sendAndConfirmTransaction,
} from "@solana/web3.js";
import {
  ASSOCIATED_TOKEN_PROGRAM_ID,
  ExtensionType,
  TOKEN_2022_PROGRAM_ID,
  TOKEN_PROGRAM_ID,
  createInitializeMetadataPointerInstruction,
  createInitializeMintInstruction,
  createInitializeTransferFeeConfigInstruction,
  createMint,
  getAccount,
  getMintLen,
  getOrCreateAssociatedTokenAccount,
  mintTo,
  transfer,
} from "@solana/spl-token";
import bs58 from "bs58";

const rpcUrl = process.argv[2];
if (!rpcUrl) {
  console.error("usage: node clients.mjs <rpc-url>");
  process.exit(2);
}
const CHECK_TIMEOUT_MS = 60_000;
const connection = new Connection(rpcUrl, "confirmed");
let failed = 0;

function report(line) {
  process.stdout.write(JSON.stringify(line) + "\n");
}

function assert(condition, message) {
  if (!condition) throw new Error(message);
}

function withTimeout(promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), CHECK_TIMEOUT_MS);
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
    report({ check: name, ok: false, ms: Date.now() - started, error: String(error?.stack ?? error) });
    return undefined;
  }
}

// Resolves with the first value `subscribe(resolve)` hands its callback; unsubscribes after.
function firstNotification(subscribe, unsubscribe) {
  let id;
  const promise = new Promise((resolve) => {
    id = subscribe(resolve);
  });
  return {
    promise: promise.finally(() => unsubscribe(id)),
  };
}

const payer = Keypair.generate();
const recipient = Keypair.generate().publicKey;
const state = {};

await check("airdrop confirmed through signatureSubscribe", async () => {
  const signature = await connection.requestAirdrop(payer.publicKey, 5 * LAMPORTS_PER_SOL);
  const latest = await connection.getLatestBlockhash();
  const result = await connection.confirmTransaction({ signature, ...latest }, "confirmed");
  assert(result.value.err === null, `airdrop failed: ${JSON.stringify(result.value.err)}`);
  const balance = await connection.getBalance(payer.publicKey);
  assert(balance === 5 * LAMPORTS_PER_SOL, `balance ${balance}`);
  return { signature, balance };
});

await check("sendAndConfirmTransaction of a SOL transfer, seen by onAccountChange and onLogs", async () => {
  const accountChange = firstNotification(
    (resolve) => connection.onAccountChange(recipient, (info, ctx) => resolve({ info, ctx }), "confirmed"),
    (id) => connection.removeAccountChangeListener(id),
  );
  const logs = firstNotification(
    (resolve) => connection.onLogs(recipient, (entry, ctx) => resolve({ entry, ctx }), "confirmed"),
    (id) => connection.removeOnLogsListener(id),
  );
  let heard = 0;
  accountChange.promise.then(() => (heard += 1));
  logs.promise.then(() => (heard += 1));
  // web3.js registers a subscription asynchronously, with no promise to wait on: on a busy machine
  // the first transfer can land before the node has the subscriptions, and (as on a validator)
  // nothing is sent for what happened before. So transfer again until both notifications came.
  const sent = [];
  const lamports = LAMPORTS_PER_SOL / 10;
  for (let round = 0; round < 20 && heard < 2; round += 1) {
    const tx = new Transaction().add(
      SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports }),
    );
    sent.push(await sendAndConfirmTransaction(connection, tx, [payer], { commitment: "confirmed" }));
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const signature = sent[0];
  state.transferSignature = signature;
  const changed = await accountChange.promise;
  const multiple = changed.info.lamports / lamports;
  assert(Number.isInteger(multiple) && multiple >= 1 && multiple <= sent.length,
    `account change saw ${changed.info.lamports} after ${sent.length} transfers of ${lamports}`);
  const logged = await logs.promise;
  assert(sent.includes(logged.entry.signature), `logs for ${logged.entry.signature}`);
  assert(logged.entry.err === null, "logs carry an error");
  return {
    signature,
    transfers: sent.length,
    accountChangeLamports: changed.info.lamports,
    accountChangeSlot: changed.ctx.slot,
    logsSignature: logged.entry.signature,
    logs: logged.entry.logs,
  };
});

await check("onSignature before sending a signed transaction", async () => {
  const latest = await connection.getLatestBlockhash();
  const tx = new Transaction({ feePayer: payer.publicKey, ...latest }).add(
    SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: 1_000_000 }),
  );
  tx.sign(payer);
  const sigText = bs58.encode(tx.signature);
  const raw = tx.serialize();
  const seen = new Promise((resolve) => {
    connection.onSignature(sigText, (result, ctx) => resolve({ result, ctx }), "confirmed");
  });
  await connection.sendRawTransaction(raw);
  const { result, ctx } = await seen;
  assert(result.err === null, `onSignature err ${JSON.stringify(result.err)}`);
  return { signature: sigText, slot: ctx.slot };
});

await check("spl-token: createMint, getOrCreateAssociatedTokenAccount, mintTo, transfer", async () => {
  const mint = await createMint(connection, payer, payer.publicKey, null, 6);
  const source = await getOrCreateAssociatedTokenAccount(connection, payer, mint, payer.publicKey);
  await mintTo(connection, payer, mint, source.address, payer, 1_000_000n);
  const destination = await getOrCreateAssociatedTokenAccount(connection, payer, mint, recipient);
  const signature = await transfer(connection, payer, source.address, destination.address, payer, 250_000n);
  const after = await getAccount(connection, destination.address);
  assert(after.amount === 250_000n, `destination holds ${after.amount}`);
  state.mint = mint;
  state.tokenTransferSignature = signature;
  state.destination = destination.address;
  return { mint: mint.toBase58(), signature, destinationAmount: after.amount.toString() };
});

await check("getParsedTransaction of a legacy SOL transfer", async () => {
  const parsed = await connection.getParsedTransaction(state.transferSignature, {
    commitment: "confirmed",
    maxSupportedTransactionVersion: 0,
  });
  assert(parsed !== null, "no transaction");
  const [ix] = parsed.transaction.message.instructions;
  assert(ix.program === "system" && ix.parsed.type === "transfer", JSON.stringify(ix));
  assert(ix.parsed.info.lamports === LAMPORTS_PER_SOL / 10, "lamports");
  assert(parsed.version === "legacy", `version ${parsed.version}`);
  assert(parsed.meta.fee === 5000, `fee ${parsed.meta.fee}`);
  assert(typeof parsed.blockTime === "number", "blockTime");
  const plain = await connection.getTransaction(state.transferSignature, { commitment: "confirmed" });
  assert(plain !== null && plain.meta.err === null, "getTransaction without maxSupportedTransactionVersion");
  return { version: parsed.version, type: ix.parsed.type, fee: parsed.meta.fee };
});

await check("getParsedTransaction of an spl-token transfer", async () => {
  const parsed = await connection.getParsedTransaction(state.tokenTransferSignature, {
    commitment: "confirmed",
    maxSupportedTransactionVersion: 0,
  });
  const ix = parsed.transaction.message.instructions.find((i) => i.program === "spl-token");
  assert(ix && ix.parsed.type === "transfer" && ix.parsed.info.amount === "250000", JSON.stringify(ix));
  const post = parsed.meta.postTokenBalances.find((b) => b.owner === recipient.toBase58());
  assert(post && post.uiTokenAmount.amount === "250000", JSON.stringify(parsed.meta.postTokenBalances));
  return { type: ix.parsed.type, postTokenBalances: parsed.meta.postTokenBalances.length };
});

await check("v0 transaction: send, confirm, getParsedTransaction, simulate", async () => {
  const latest = await connection.getLatestBlockhash();
  const message = new TransactionMessage({
    payerKey: payer.publicKey,
    recentBlockhash: latest.blockhash,
    instructions: [SystemProgram.transfer({ fromPubkey: payer.publicKey, toPubkey: recipient, lamports: 2_000_000 })],
  }).compileToV0Message();
  const tx = new VersionedTransaction(message);
  tx.sign([payer]);
  const simulated = await connection.simulateTransaction(tx, { sigVerify: false, replaceRecentBlockhash: true });
  assert(simulated.value.err === null, JSON.stringify(simulated.value.err));
  assert(simulated.value.unitsConsumed > 0, `unitsConsumed ${simulated.value.unitsConsumed}`);
  const signature = await connection.sendTransaction(tx);
  const confirmed = await connection.confirmTransaction({ signature, ...latest }, "confirmed");
  assert(confirmed.value.err === null, "v0 failed");
  const parsed = await connection.getParsedTransaction(signature, {
    commitment: "confirmed",
    maxSupportedTransactionVersion: 0,
  });
  assert(parsed.version === 0, `version ${parsed.version}`);
  assert(parsed.transaction.message.instructions[0].parsed.type === "transfer", "parsed v0");
  let refused = "";
  try {
    await connection.getTransaction(signature, { commitment: "confirmed" });
  } catch (error) {
    refused = String(error);
  }
  assert(refused.includes("maxSupportedTransactionVersion"), `v0 without a max version: ${refused}`);
  state.v0Slot = parsed.slot;
  return {
    signature,
    version: parsed.version,
    unitsConsumed: simulated.value.unitsConsumed,
    replacementBlockhash: Boolean(simulated.value.replacementBlockhash),
  };
});

await check("explorer reads: epoch, accounts, signatures, blocks, fees, supply", async () => {
  const epoch = await connection.getEpochInfo();
  assert(epoch.absoluteSlot > 0 && typeof epoch.slotsInEpoch === "number", JSON.stringify(epoch));
  const schedule = await connection.getEpochSchedule();
  const genesis = await connection.getGenesisHash();
  const holders = await connection.getProgramAccounts(TOKEN_PROGRAM_ID, {
    filters: [{ dataSize: 165 }, { memcmp: { offset: 0, bytes: state.mint.toBase58() } }],
  });
  assert(holders.length === 2, `program accounts ${holders.length}`);
  const parsedHolders = await connection.getParsedProgramAccounts(TOKEN_PROGRAM_ID, {
    filters: [{ dataSize: 165 }, { memcmp: { offset: 0, bytes: state.mint.toBase58() } }],
  });
  assert(parsedHolders.every((h) => h.account.data.parsed.type === "account"), "parsed holders");
  const mintInfo = await connection.getParsedAccountInfo(state.mint);
  assert(mintInfo.value.data.parsed.type === "mint", JSON.stringify(mintInfo.value.data));
  assert(mintInfo.value.data.parsed.info.supply === "1000000", "supply");
  const largest = await connection.getTokenLargestAccounts(state.mint);
  assert(largest.value[0].amount === "750000", JSON.stringify(largest.value));
  const signatures = await connection.getSignaturesForAddress(recipient, { limit: 10 });
  assert(signatures.some((s) => s.signature === state.transferSignature), "signatures for address");
  const blockTime = await connection.getBlockTime(state.v0Slot);
  assert(typeof blockTime === "number", `blockTime ${blockTime}`);
  const block = await connection.getBlock(state.v0Slot, { maxSupportedTransactionVersion: 0 });
  assert(block.transactions.length >= 1, "block transactions");
  const fees = await connection.getRecentPrioritizationFees({ lockedWritableAccounts: [recipient] });
  assert(Array.isArray(fees) && fees.length > 0, "prioritization fees");
  const supply = await connection.getSupply();
  assert(supply.value.total > 0, "supply");
  return {
    epoch: epoch.epoch,
    slotsPerEpoch: schedule.slotsPerEpoch,
    genesis,
    holders: holders.length,
    signatures: signatures.length,
    blockTransactions: block.transactions.length,
    fees: fees.length,
  };
});

await check("Token-2022 mint and account with extensions, read back jsonParsed", async () => {
  const mint = Keypair.generate();
  const extensions = [ExtensionType.TransferFeeConfig, ExtensionType.MetadataPointer];
  const space = getMintLen(extensions);
  const lamports = await connection.getMinimumBalanceForRentExemption(space);
  const tx = new Transaction().add(
    SystemProgram.createAccount({
      fromPubkey: payer.publicKey,
      newAccountPubkey: mint.publicKey,
      space,
      lamports,
      programId: TOKEN_2022_PROGRAM_ID,
    }),
    createInitializeTransferFeeConfigInstruction(
      mint.publicKey, payer.publicKey, payer.publicKey, 50, 5_000n, TOKEN_2022_PROGRAM_ID,
    ),
    createInitializeMetadataPointerInstruction(
      mint.publicKey, payer.publicKey, mint.publicKey, TOKEN_2022_PROGRAM_ID,
    ),
    createInitializeMintInstruction(mint.publicKey, 6, payer.publicKey, null, TOKEN_2022_PROGRAM_ID),
  );
  await sendAndConfirmTransaction(connection, tx, [payer, mint], { commitment: "confirmed" });
  const holder = await getOrCreateAssociatedTokenAccount(
    connection, payer, mint.publicKey, payer.publicKey, false, "confirmed", undefined,
    TOKEN_2022_PROGRAM_ID, ASSOCIATED_TOKEN_PROGRAM_ID,
  );
  await mintTo(connection, payer, mint.publicKey, holder.address, payer, 42_000_000n, [], undefined, TOKEN_2022_PROGRAM_ID);
  const parsedMint = (await connection.getParsedAccountInfo(mint.publicKey)).value.data;
  assert(parsedMint.program === "spl-token-2022" && parsedMint.parsed.type === "mint", JSON.stringify(parsedMint));
  const mintExtensions = parsedMint.parsed.info.extensions.map((e) => e.extension);
  const fee = parsedMint.parsed.info.extensions.find((e) => e.extension === "transferFeeConfig");
  assert(fee.state.newerTransferFee.transferFeeBasisPoints === 50, JSON.stringify(fee));
  assert(fee.state.newerTransferFee.maximumFee === 5000, JSON.stringify(fee));
  const pointer = parsedMint.parsed.info.extensions.find((e) => e.extension === "metadataPointer");
  assert(pointer.state.metadataAddress === mint.publicKey.toBase58(), JSON.stringify(pointer));
  const parsedAccount = (await connection.getParsedAccountInfo(holder.address)).value.data;
  const accountExtensions = parsedAccount.parsed.info.extensions.map((e) => e.extension);
  assert(parsedAccount.parsed.info.tokenAmount.uiAmountString === "42", JSON.stringify(parsedAccount));
  assert(accountExtensions.includes("immutableOwner") && accountExtensions.includes("transferFeeAmount"),
    JSON.stringify(accountExtensions));
  const byOwner = await connection.getParsedTokenAccountsByOwner(payer.publicKey, { programId: TOKEN_2022_PROGRAM_ID });
  assert(byOwner.value.length === 1, `token-2022 accounts by owner ${byOwner.value.length}`);
  return { mintExtensions, accountExtensions };
});

await check("onSlotChange and onRootChange", async () => {
  const slot = firstNotification(
    (resolve) => connection.onSlotChange(resolve),
    (id) => connection.removeSlotChangeListener(id),
  );
  const root = firstNotification(
    (resolve) => connection.onRootChange(resolve),
    (id) => connection.removeRootChangeListener(id),
  );
  const slotInfo = await slot.promise;
  const rootSlot = await root.promise;
  assert(slotInfo.slot > slotInfo.parent, JSON.stringify(slotInfo));
  return { slot: slotInfo.slot, root: rootSlot };
});

report({ done: true, failed });
process.exit(failed ? 1 : 0);
