-- Per-key risk limits (issue 25; DESIGN "Guarantees"; engine/limits.py), in the input token's
-- own units: no price oracle.
ALTER TABLE api_keys
    -- the most slippage (percent) an order of the key may ask for (the contract's 50 at most)
    ADD COLUMN max_slippage numeric NOT NULL DEFAULT 50
        CHECK (max_slippage > 0 AND max_slippage <= 50),
    -- a limit order's limitPrice more than this many percent below the quote is refused
    ADD COLUMN limit_price_guard numeric NOT NULL DEFAULT 20
        CHECK (limit_price_guard >= 0 AND limit_price_guard < 100);

-- The key's own limits per mint it sells; a mint without a row has the engine's default
-- (limits.DEFAULT_MINT_LIMITS: SOL and USDC), and a mint with neither may be sold only up to
-- what the key's own fills bought (key_positions).
CREATE TABLE key_mint_limits (
    api_key_id     uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    mint           text NOT NULL,
    max_in         numeric NOT NULL CHECK (max_in > 0),           -- per order
    max_in_per_24h numeric NOT NULL CHECK (max_in_per_24h > 0),   -- per rolling 24 h
    PRIMARY KEY (api_key_id, mint)
);

-- What each key's confirmed fills bought and sold, per mint (token units): written by the
-- trigger below in the transaction that confirms the order, so it is never out of step.
CREATE TABLE key_positions (
    api_key_id uuid NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    mint       text NOT NULL,
    amount     numeric NOT NULL DEFAULT 0,
    PRIMARY KEY (api_key_id, mint)
);

CREATE FUNCTION record_key_fill() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO key_positions AS p (api_key_id, mint, amount)
    VALUES (NEW.api_key_id, NEW.mint_out, (NEW.filled ->> 'amountOut')::numeric),
           (NEW.api_key_id, NEW.mint_in, -(NEW.filled ->> 'amountIn')::numeric)
    ON CONFLICT (api_key_id, mint) DO UPDATE SET amount = p.amount + EXCLUDED.amount;
    RETURN NULL;
END $$;

CREATE TRIGGER orders_key_fill AFTER UPDATE OF status ON orders FOR EACH ROW
    WHEN (NEW.status = 'confirmed' AND OLD.status <> 'confirmed'
          AND NEW.api_key_id IS NOT NULL AND NEW.filled IS NOT NULL)
    EXECUTE FUNCTION record_key_fill();

-- The 24 h sums read one key's orders of one input mint, newest first.
CREATE INDEX orders_api_key_mint_in ON orders (api_key_id, mint_in, created_at);

-- submit and ws_connect check the limits when they accept an order; execute checks them again
-- and (by the trigger) records its fills; quote reads nothing of this.
GRANT SELECT ON key_mint_limits, key_positions TO engine_submit, engine_ws_connect, engine_execute;
GRANT INSERT, UPDATE ON key_positions TO engine_execute;
GRANT SELECT (max_slippage, limit_price_guard) ON api_keys TO engine_execute;
