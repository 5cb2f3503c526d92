-- A revoked key's open WebSocket connections are closed: delivery checks the connection's key
-- (notify and ws_connect read whether it is revoked, nothing else of it), and revoking finds the
-- key's connections by this index.
CREATE INDEX connections_api_key ON connections (api_key_id);
GRANT SELECT (id, revoked_at) ON api_keys TO engine_notify;
