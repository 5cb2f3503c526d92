-- Routes of more than two legs (issue 28; execution/lookup.py): the wallet's address lookup
-- table, one per wallet, created and extended by the engine. `address` is the table (derived
-- from the wallet and the slot it was created from), `last_extended_slot` the slot its last
-- extension landed in (NULL until its creation landed): a route uses the table only in a later
-- slot, once it holds every pool account of the route (the chain's copy is what routing reads).
CREATE TABLE lookup_tables (
    wallet text PRIMARY KEY,
    address text NOT NULL UNIQUE,
    last_extended_slot bigint,
    updated_at timestamptz NOT NULL DEFAULT now()
);
GRANT SELECT, INSERT, UPDATE ON lookup_tables TO engine_execute;
