-- Least privilege. migrate creates the roles (migrate/roles.py) as the
-- bootstrap superuser and applies the migrations as suite_owner, which owns
-- every object here; no long-running service uses it. What the others may do:
--   message_writer (rest_server, grpc_server, rabbitmq_server): call
--     store_messages and read messages;
--   message_reader (websocket_hub): read messages and stream;
--   both: read _yoyo_migration (each server waits at start for the migration
--     its code needs, msgsuite/schema.py).
-- Nothing else: no INSERT, UPDATE, DELETE or TRUNCATE on any table, no
-- CREATE. PostgreSQL cannot restrict LISTEN or NOTIFY; the hub takes the
-- 'messages' notification as a doorbell only (it reads the table), so a
-- NOTIFY from anyone costs one read, nothing more.
-- Expand only: servers of the previous release connect as the superuser and
-- go on calling store_messages unchanged.
-- depends: 0002-stream-counts-per-via

-- store_messages runs with its owner's rights, so the writers need no
-- privilege on the tables. As PostgreSQL's documentation advises for
-- SECURITY DEFINER functions ("Writing SECURITY DEFINER Functions Safely"),
-- its search_path is fixed and holds no schema an untrusted role can write
-- to: public is writable by suite_owner alone (migrate revokes CREATE on it
-- from PUBLIC), and pg_temp comes last so that a temporary object of the
-- caller cannot stand in for a table. The body is unchanged (0002).
ALTER FUNCTION store_messages(text, text[], text[])
    SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp;
-- Functions are executable by PUBLIC when created: only the writers may call it.
REVOKE ALL ON FUNCTION store_messages(text, text[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION store_messages(text, text[], text[]) TO message_writer;

REVOKE ALL ON TABLE stream, messages, _yoyo_migration FROM PUBLIC;
GRANT SELECT ON TABLE messages TO message_writer, message_reader;
GRANT SELECT ON TABLE stream TO message_reader;
GRANT SELECT ON TABLE _yoyo_migration TO message_writer, message_reader;

-- A function a later migration creates is nobody's to call until it grants it.
ALTER DEFAULT PRIVILEGES FOR ROLE suite_owner REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
