-- store_messages finds the counter row through its primary key instead of
-- scanning the stream table. The table holds one live row, but every store
-- updates it, and under concurrent writers some of those updates cannot stay
-- on the row's page (HOT pruning waits for the writers queued on the row
-- lock), so the table grows by empty pages that autovacuum cannot truncate
-- while writers hold their locks on it. `SELECT ... FOR UPDATE` and `UPDATE`
-- without a WHERE read every one of those pages, twice per transaction: on a
-- benchmark stack the table was 77 pages (630 kB) after 32,000 stores and
-- each scan took 0.1 to 0.2 ms (EXPLAIN ANALYZE), against 0.05 ms by key.
-- That is a cost that grows with the table's history, not with the number
-- of messages; at this machine's noise it did not show in throughput.
-- `WHERE s.singleton` lets both statements use stream_pkey and read only the
-- row's own page, whatever the table's size. enable_seqscan = off for the
-- function's own statements keeps it so: a plan made while the table is one
-- page long would be a sequential scan, and a connection keeps a function's
-- plans while the table grows (the other statements here are an index
-- lookup and an INSERT, which it does not change).
-- Expand only: same signature, same results, same rights (SECURITY DEFINER,
-- fixed search_path as set by 0003, which CREATE OR REPLACE would otherwise
-- reset); servers of the previous release go on calling it unchanged.
-- depends: 0003-least-privilege

CREATE OR REPLACE FUNCTION store_messages(p_via text, p_messages text[], p_keys text[])
RETURNS TABLE (id bigint, via text, message text, created_at timestamptz,
               idempotency_key text, repeated boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, public, pg_temp
SET enable_seqscan = off
AS $$
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
    SELECT s.total INTO v_total FROM stream s WHERE s.singleton FOR UPDATE;
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
        UPDATE stream SET
            total          = v_total,
            grpc_total     = grpc_total     + CASE WHEN p_via = 'GRPC'     THEN v_stored ELSE 0 END,
            rest_total     = rest_total     + CASE WHEN p_via = 'REST'     THEN v_stored ELSE 0 END,
            rabbitmq_total = rabbitmq_total + CASE WHEN p_via = 'RabbitMQ' THEN v_stored ELSE 0 END
        WHERE singleton;
        PERFORM pg_notify('messages', v_total::text);
    END IF;
END;
$$;
