-- Orders, their append-only event log, and idempotency keys.
CREATE TABLE orders (
    id                     uuid PRIMARY KEY,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now(),
    request                jsonb NOT NULL,
    token_in               text NOT NULL,
    token_out              text NOT NULL,
    mint_in                text NOT NULL,
    mint_out               text NOT NULL,
    amount_in              numeric NOT NULL CHECK (amount_in > 0),
    slippage               numeric NOT NULL CHECK (slippage > 0 AND slippage <= 50),
    order_type             text NOT NULL DEFAULT 'market',
    status                 text NOT NULL CHECK (status IN
                             ('pending','routing','building','submitted','confirmed','failed')),
    seq                    integer NOT NULL DEFAULT 0,
    idempotency_key        text,
    request_hash           text NOT NULL,
    enqueued_at            timestamptz,
    venue                  text,
    pool                   text,
    quotes                 jsonb,
    decimals_out           integer,
    amount_out             numeric,  -- base units of token_out
    min_amount_out         numeric,  -- base units of token_out
    tx_signature           text,
    last_valid_block_height bigint,
    signed_tx              bytea,
    attempts               integer NOT NULL DEFAULT 0,
    failure_code           text,
    failure_reason         text
);
CREATE UNIQUE INDEX orders_idempotency_key ON orders (idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX orders_created ON orders (created_at DESC, id DESC);

CREATE TABLE order_events (
    order_id   uuid NOT NULL REFERENCES orders (id),
    seq        integer NOT NULL,
    status     text NOT NULL,
    at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    detail     jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (order_id, seq)
);

-- The log is append-only: history is evidence, so nothing may rewrite it.
CREATE FUNCTION order_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'order_events is append-only';
END $$;
CREATE TRIGGER order_events_no_update BEFORE UPDATE OR DELETE ON order_events
    FOR EACH ROW EXECUTE FUNCTION order_events_append_only();
