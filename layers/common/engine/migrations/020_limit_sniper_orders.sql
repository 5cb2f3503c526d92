-- Limit and sniper orders (issue 12; DESIGN.md "Order types" and "One vocabulary").
--
-- The statuses are engine/orders.py's `Status`, all ten of them
-- (tests/integration/test_order_lifecycle.py reads this constraint back and compares).
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check CHECK (status IN
    ('pending', 'watching', 'triggered', 'routing', 'building', 'submitted',
     'confirmed', 'failed', 'expired', 'cancelled'));
ALTER TABLE orders ADD CONSTRAINT orders_type_check
    CHECK (order_type IN ('market', 'limit', 'sniper'));

-- A limit order has no slippage: its limit price is its worst price.
ALTER TABLE orders ALTER COLUMN slippage DROP NOT NULL;
ALTER TABLE orders
    -- limit: the least tokenOut per 1 tokenIn accepted (fees and price impact included)
    ADD COLUMN limit_price numeric CHECK (limit_price > 0),
    -- limit and sniper: when watching ends
    ADD COLUMN expires_at timestamptz,
    -- sniper: only pools of this venue; not above this price (tokenIn per tokenOut); only
    -- pools holding at least this much tokenIn (token units)
    ADD COLUMN pool_venue text CHECK (pool_venue IN ('raydium_cpmm', 'meteora_damm_v2')),
    ADD COLUMN max_price numeric CHECK (max_price > 0),
    ADD COLUMN min_liquidity numeric CHECK (min_liquidity >= 0),
    -- sniper: the chain's slot when the order was accepted; only pools created at or after it
    -- count (a pool that existed before the order is not new to it)
    ADD COLUMN watch_from_slot bigint CHECK (watch_from_slot >= 0),
    -- how many times the watcher triggered it (a limit order refused for price after
    -- triggering goes back to watching, at most MAX_TRIGGERS times in all)
    ADD COLUMN triggers integer NOT NULL DEFAULT 0 CHECK (triggers >= 0);
ALTER TABLE orders ADD CONSTRAINT orders_watched_expire
    CHECK (order_type = 'market' OR expires_at IS NOT NULL);
ALTER TABLE orders ADD CONSTRAINT orders_limit_price
    CHECK ((order_type = 'limit') = (limit_price IS NOT NULL));
ALTER TABLE orders ADD CONSTRAINT orders_slippage_given
    CHECK ((order_type = 'limit') = (slippage IS NULL));

-- What the watcher reads every tick, and what it sweeps (a trigger whose queue message may not
-- have gone out). Literal statuses: a partial index's predicate must be constant.
CREATE INDEX orders_watching ON orders (expires_at) WHERE status = 'watching';
CREATE INDEX orders_triggered ON orders (updated_at) WHERE status = 'triggered';

-- The in-flight limit (`max_in_flight`) and the open-order limit (`max_open_orders`) count one
-- key's orders in a set of statuses (engine/orders.py IN_FLIGHT and OPEN): one index serves
-- both, whatever the sets hold.
DROP INDEX orders_api_key_in_flight;
CREATE INDEX orders_api_key_status ON orders (api_key_id, status);
ALTER TABLE api_keys ADD COLUMN max_open_orders integer NOT NULL DEFAULT 100
    CHECK (max_open_orders > 0);

-- Pools the watcher has seen for the pairs sniper orders watch, with the transaction that
-- created each (CPMM `initialize`, DAMM v2 `initialize_pool` / `initialize_customizable_pool`).
-- created_slot NULL: no creation transaction could be found (the pool's history is longer than
-- the RPC keeps, or starts with something else): it is old, and new to no order.
CREATE TABLE pool_births (
    endpoint           text NOT NULL,
    address            text NOT NULL,
    venue              text NOT NULL CHECK (venue IN ('raydium_cpmm', 'meteora_damm_v2')),
    mint_a             text NOT NULL,
    mint_b             text NOT NULL,
    depends_on         text[] NOT NULL DEFAULT '{}',
    created_slot       bigint,
    creation_signature text,
    seen_slot          bigint NOT NULL,
    seen_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, address),
    CHECK (mint_a <> mint_b)
);
CREATE INDEX pool_births_pair
    ON pool_births (endpoint, LEAST(mint_a, mint_b), GREATEST(mint_a, mint_b));

-- Where an RPC refuses getProgramAccounts, new pools are found from each venue program's
-- signatures; this is how far the watcher has read them.
CREATE TABLE watch_cursors (
    endpoint   text NOT NULL,
    program    text NOT NULL,
    signature  text NOT NULL,
    slot       bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (endpoint, program)
);

-- Two new functions, two new roles (see 005_function_roles.sql): the watcher and the quote
-- endpoint. Each gets LOGIN and its password at deploy time from its own secret.
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['engine_watch', 'engine_quote'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        -- Roles are per server: another database of this server made it already
        -- (duplicate_object), or made it while this one waited on it (unique_violation).
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END $$;

-- The watcher: reads watched orders, moves them (triggered, expired) and logs each event;
-- finds pools like the executor does (the pool cache) and records new ones and its cursor.
GRANT SELECT, UPDATE ON orders TO engine_watch;
GRANT SELECT, INSERT ON order_events TO engine_watch;
GRANT SELECT, INSERT, UPDATE, DELETE ON pool_pairs, pools, not_pools TO engine_watch;
GRANT SELECT, INSERT, UPDATE ON pool_births, watch_cursors TO engine_watch;

-- The quote endpoint: quotes a pair over the pool cache (discovery records what it finds);
-- no order, key or connection is any of its business.
GRANT SELECT, INSERT, UPDATE, DELETE ON pool_pairs, pools, not_pools TO engine_quote;
