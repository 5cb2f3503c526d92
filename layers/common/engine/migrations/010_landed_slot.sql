-- The slot the order's transaction landed in (confirmed, or failed on chain with an error the
-- user paid a fee for). NULL: no transaction of this order is known to have landed, so a failed
-- order shows no txHash or explorer link for it.
ALTER TABLE orders ADD COLUMN landed_slot bigint;
