-- The pool cache: which pools trade which pair, found by discovery (getProgramAccounts) or by
-- reading a pool an order pins or VENUE_POOLS lists, so routing an already-discovered pair
-- reads the pool list from here and spends its one RPC round trip on quoting.
--
-- `endpoint` is a fingerprint of the RPC URL the engine talks to (a hash: the URL may carry a
-- provider's key). A pool address means something on one cluster only, and one database may
-- serve a local chain and devnet in turn (`make run`), so their pools never mix.

-- A pair whose pools discovery has listed, and when (the refresh interval counts from it).
-- Mints in text order, so a pair is one row whichever side is sold.
CREATE TABLE pool_pairs (
    endpoint     text NOT NULL,
    mint_x       text NOT NULL,
    mint_y       text NOT NULL,
    refreshed_at timestamptz NOT NULL,
    PRIMARY KEY (endpoint, mint_x, mint_y),
    CHECK (mint_x < mint_y)
);

CREATE TABLE pools (
    endpoint     text NOT NULL,
    address      text NOT NULL,
    venue        text NOT NULL CHECK (venue IN ('raydium_cpmm', 'meteora_damm_v2')),
    -- The pool's own two mints, in its own order (CPMM token_0/1, DAMM v2 token_a/b).
    mint_a       text NOT NULL,
    mint_b       text NOT NULL,
    -- What each side held when last read, in base units: the cap on pools quoted per pair
    -- keeps the deepest (in the output token). The liquidity floor is checked on live reserves.
    reserve_a    numeric NOT NULL DEFAULT 0 CHECK (reserve_a >= 0),
    reserve_b    numeric NOT NULL DEFAULT 0 CHECK (reserve_b >= 0),
    -- The other accounts a quote reads (vaults, config): never change for a pool, so a new
    -- container's first quote needs no extra call to learn them.
    depends_on   text[] NOT NULL DEFAULT '{}',
    found_at     timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, address),
    CHECK (mint_a <> mint_b)
);
CREATE INDEX pools_pair ON pools (endpoint, LEAST(mint_a, mint_b), GREATEST(mint_a, mint_b));
-- The submit function checks a pinned pool by address alone (it does not talk to the chain).
CREATE INDEX pools_address ON pools (address);

-- Addresses read and found to be no pool of a supported venue (an account of another program,
-- or not a pool's layout). An address with no account at all is never recorded: a pool may be
-- created there later.
CREATE TABLE not_pools (
    endpoint text NOT NULL,
    address  text NOT NULL,
    reason   text NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, address)
);
CREATE INDEX not_pools_address ON not_pools (address);

-- An order may pin the one pool it trades on (`poolId`).
ALTER TABLE orders ADD COLUMN pinned_pool text;
