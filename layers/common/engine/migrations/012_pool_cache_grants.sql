-- The pool cache (004) for the function roles (005): submit and ws_connect check a pinned pool
-- against it (read only); execute reads it, records what discovery found and forgets pools that
-- are gone.
GRANT SELECT ON pool_pairs, pools, not_pools TO engine_submit, engine_ws_connect;
GRANT SELECT, INSERT, UPDATE, DELETE ON pool_pairs, pools, not_pools TO engine_execute;
