-- WebSocket connections and their per-order subscriptions.
-- `subscriptions.delivered_seq` is the last event seq posted to that connection for that order.
-- Delivery locks the subscription row (SELECT ... FOR UPDATE), posts every event after
-- delivered_seq in order and moves it forward, so the replay of a `subscribe` and the live
-- notifications of new events serialise on that one row: no frame skipped, none sent twice.
CREATE TABLE connections (
    connection_id   text PRIMARY KEY,
    connected_at    timestamptz NOT NULL DEFAULT now(),
    domain          text,
    stage           text,
    -- The management API URL that reaches this connection (stage-qualified in the cloud).
    endpoint        text,
    -- An Idempotency-Key sent as a header on $connect applies to orders submitted on the socket.
    idempotency_key text
);

CREATE TABLE subscriptions (
    connection_id text NOT NULL REFERENCES connections (connection_id) ON DELETE CASCADE,
    order_id      uuid NOT NULL REFERENCES orders (id),
    delivered_seq integer NOT NULL DEFAULT 0 CHECK (delivered_seq >= 0),
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (connection_id, order_id)
);
-- Fan-out looks subscriptions up by order.
CREATE INDEX subscriptions_order ON subscriptions (order_id);
