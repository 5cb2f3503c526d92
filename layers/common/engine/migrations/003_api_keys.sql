-- Who may trade: API keys, the orders and connections they own, and per-key idempotency.
--
-- A key is `oek_` + 32 random bytes (secrets.token_urlsafe), shown once when it is created; only
-- its SHA-256 is stored. A fast unsalted hash is the right tool here, unlike for passwords: the
-- secret carries 256 bits of entropy, so neither brute force nor a precomputed table can invert
-- the digest, and a slow KDF would only add latency to every authorizer call. The hash is
-- unique, so `verify` is one index lookup.
CREATE TABLE api_keys (
    id            uuid PRIMARY KEY,
    name          text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    -- The first characters of the key, to tell keys apart in listings; never enough to use.
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    max_in_flight integer NOT NULL DEFAULT 20 CHECK (max_in_flight > 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- Orders belong to the key that created them (NULL: created by the engine itself, e.g. tests).
ALTER TABLE orders ADD COLUMN api_key_id uuid REFERENCES api_keys (id);
-- GET /api/orders lists one key's orders, newest first.
CREATE INDEX orders_api_key_created ON orders (api_key_id, created_at DESC, id DESC);
-- The in-flight limit counts one key's orders that are not terminal yet.
CREATE INDEX orders_api_key_in_flight ON orders (api_key_id)
    WHERE status NOT IN ('confirmed', 'failed');

-- An Idempotency-Key is the client's name for an order, so it is scoped to the client: the same
-- key from two API keys makes two orders and never returns (or conflicts with) the other's.
-- NULLS NOT DISTINCT keeps key-less orders (api_key_id NULL) deduplicated among themselves.
DROP INDEX orders_idempotency_key;
CREATE UNIQUE INDEX orders_idempotency_key ON orders (api_key_id, idempotency_key)
    NULLS NOT DISTINCT WHERE idempotency_key IS NOT NULL;

-- A WebSocket connection is authorized once, on $connect; its frames act for that key.
ALTER TABLE connections ADD COLUMN api_key_id uuid REFERENCES api_keys (id);
