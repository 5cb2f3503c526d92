-- Revoking a key ends what it started (issue 25; DESIGN "Guarantees"; Store.revoke_key).
-- The moves that trigger or send an order check that its key is not revoked (Store.transition's
-- guard), and the watcher skips a revoked key's orders: the execute and watch roles read that.
GRANT SELECT (id, revoked_at) ON api_keys TO engine_execute, engine_watch;
