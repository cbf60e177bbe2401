-- The schema as of the first versioned release. Written to be a no-op on a
-- database created by the old database/init/01-schema.sql (commit 154e394):
-- every statement is IF NOT EXISTS, CREATE OR REPLACE or ON CONFLICT, so an
-- existing installation keeps its messages, its epoch and its total.

-- One row: the stream's identity (epoch) and the number of messages stored.
-- Writers take the next total with UPDATE ... RETURNING, so the row lock
-- hands out totals in commit order with no gap (a sequence would leave gaps
-- on rollback, count(*) would give two concurrent writers the same total).
CREATE TABLE IF NOT EXISTS stream (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch     uuid    NOT NULL DEFAULT gen_random_uuid(),
    total     bigint  NOT NULL DEFAULT 0 CHECK (total >= 0)
);
INSERT INTO stream DEFAULT VALUES ON CONFLICT (singleton) DO NOTHING;

CREATE TABLE IF NOT EXISTS messages (
    id              bigint      PRIMARY KEY,
    via             text        NOT NULL CHECK (via IN ('GRPC', 'REST', 'RabbitMQ')),
    message         text        NOT NULL CHECK (char_length(message) BETWEEN 1 AND 4096
                                               AND message ~ '[^[:space:]]'),
    idempotency_key text        UNIQUE CHECK (char_length(idempotency_key) BETWEEN 1 AND 200),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Stores a batch of messages from one protocol in the caller's transaction.
-- Each message gets the next total as its id and rings the 'messages'
-- doorbell; a message whose idempotency key is already stored gets the
-- original row back (repeated = true) and stores nothing.
-- Keys are checked again after the counter lock is held: that lock
-- serialises every writer, so two concurrent sends of one key cannot both
-- insert.
CREATE OR REPLACE FUNCTION store_messages(p_via text, p_messages text[], p_keys text[])
RETURNS TABLE (id bigint, via text, message text, created_at timestamptz,
               idempotency_key text, repeated boolean)
LANGUAGE plpgsql AS $$
DECLARE
    v_total bigint;
    v_count int := coalesce(array_length(p_messages, 1), 0);
    v_existing messages%ROWTYPE;
    v_stored int := 0;
    i int;
BEGIN
    IF v_count = 0 THEN
        RETURN;
    END IF;
    SELECT s.total INTO v_total FROM stream s FOR UPDATE;
    FOR i IN 1 .. v_count LOOP
        IF p_keys[i] IS NOT NULL THEN
            SELECT * INTO v_existing FROM messages m WHERE m.idempotency_key = p_keys[i];
            IF FOUND THEN
                id := v_existing.id; via := v_existing.via; message := v_existing.message;
                created_at := v_existing.created_at; idempotency_key := v_existing.idempotency_key;
                repeated := true;
                RETURN NEXT;
                CONTINUE;
            END IF;
        END IF;
        v_total := v_total + 1;
        v_stored := v_stored + 1;
        INSERT INTO messages AS m (id, via, message, idempotency_key)
        VALUES (v_total, p_via, p_messages[i], p_keys[i])
        RETURNING m.id, m.via, m.message, m.created_at, m.idempotency_key
        INTO id, via, message, created_at, idempotency_key;
        repeated := false;
        RETURN NEXT;
    END LOOP;
    IF v_stored > 0 THEN
        UPDATE stream SET total = v_total;
        PERFORM pg_notify('messages', v_total::text);
    END IF;
END;
$$;
