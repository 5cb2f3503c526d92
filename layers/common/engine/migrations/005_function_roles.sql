-- One database role per function, with only the grants its code needs; nothing else.
--
-- The roles are created here NOLOGIN: each gets LOGIN and its password at deploy time, from its
-- own secret (engine/provision.py, run by functions/migrate), and RDS Proxy authenticates it with
-- that secret. The owner (the master user, who runs the migrations) keeps every other right: no
-- function may create, alter or drop anything, or write api_keys or schema_migrations.
--
-- A table added by a later migration is reachable by no function until that migration grants
-- it to the roles whose code uses it (tests/integration/test_db_roles.py checks each role).
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['engine_authorizer', 'engine_submit', 'engine_ws_connect',
                                'engine_execute', 'engine_notify'] LOOP
        BEGIN
            EXECUTE format('CREATE ROLE %I NOLOGIN', name);
        -- Roles are per server: another database of this server made it already
        -- (duplicate_object), or made it while this one waited on it (unique_violation).
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;
        END;
    END LOOP;
END $$;

-- Nobody but the owner creates objects (PUBLIC may on Postgres before 15).
REVOKE CREATE ON SCHEMA public FROM PUBLIC;

-- The authorizer: is this key known and not revoked? Nothing more.
GRANT SELECT ON api_keys TO engine_authorizer;

-- Submitting (HTTP and WebSocket): create orders and their first event, read them back, mark
-- them queued or failed. The in-flight limit locks the key's row (SELECT ... FOR UPDATE), and
-- Postgres asks for UPDATE on one column of a table whose rows are locked: created_at, which
-- nothing reads for a decision, so the lock gives no power over a key.
GRANT SELECT, INSERT, UPDATE ON orders TO engine_submit, engine_ws_connect;
GRANT SELECT, INSERT ON order_events TO engine_submit, engine_ws_connect;
GRANT SELECT, UPDATE (created_at) ON api_keys TO engine_submit, engine_ws_connect;

-- WebSocket connections and subscriptions: ws_connect records and forgets them and replays
-- frames; notify delivers frames (moving delivered_seq under the row lock) and forgets a gone
-- connection (its subscriptions go with it: ON DELETE CASCADE runs as the table's owner).
GRANT SELECT, INSERT, DELETE ON connections TO engine_ws_connect;
GRANT SELECT, INSERT, UPDATE (delivered_seq) ON subscriptions TO engine_ws_connect;
GRANT SELECT, DELETE ON connections TO engine_notify;
GRANT SELECT, UPDATE (delivered_seq) ON subscriptions TO engine_notify;
GRANT SELECT ON order_events TO engine_notify;

-- Executing: move orders through their statuses and log each event.
GRANT SELECT, UPDATE ON orders TO engine_execute;
GRANT SELECT, INSERT ON order_events TO engine_execute;
