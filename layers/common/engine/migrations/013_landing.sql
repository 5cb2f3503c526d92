-- Landing like the best and telling the user what they got (issue: simulation, priced priority
-- fees, realized fills).
ALTER TABLE orders
    -- An order's own cap on the total priority fee (lamports), below the engine's.
    ADD COLUMN max_priority_fee_lamports bigint CHECK (max_priority_fee_lamports >= 0),
    -- The stored transaction's compute budget: its CU limit (the simulation's units + margin)
    -- and its price (micro-lamports per CU), and the slot it was simulated at just before the
    -- first send (slotsToLand counts from it).
    ADD COLUMN compute_unit_limit integer,
    ADD COLUMN priority_fee_micro_lamports bigint,
    ADD COLUMN sent_slot bigint,
    -- How many times the stored bytes went out, and the fee a landed transaction paid.
    ADD COLUMN sends integer NOT NULL DEFAULT 0,
    ADD COLUMN fee_lamports bigint,
    -- What a confirmed order got, read from its landed transaction (execution/fills.py).
    ADD COLUMN filled jsonb;
