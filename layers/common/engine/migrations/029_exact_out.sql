-- Exact-out orders (issue 28): `amountOut` instead of `amountIn`. amount_out_exact is what the
-- order buys, exactly (token units of token_out); amount_in is then the most it may sell: a
-- limit order's amountOut / limitPrice (rounded down) from the start, a market order's quoted
-- input plus slippage (`maxAmountIn`) once routed, so it is NULL until then.
ALTER TABLE orders ALTER COLUMN amount_in DROP NOT NULL;
ALTER TABLE orders ADD COLUMN amount_out_exact numeric CHECK (amount_out_exact > 0);
ALTER TABLE orders ADD CONSTRAINT orders_amount_given
    CHECK (amount_in IS NOT NULL OR amount_out_exact IS NOT NULL);
-- The executor stores an exact-out market order's maxAmountIn under the key's row lock, as
-- submit stores an order (engine.store.Store.reserve_input): a row lock needs UPDATE on one
-- column, and this is the one submit is given for it too.
GRANT UPDATE (created_at) ON api_keys TO engine_execute;
