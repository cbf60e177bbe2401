-- Counts per protocol in the stream row, kept by store_messages in the same
-- UPDATE as the total, so the hub's GET /stats (and its dashboard) shows
-- exact counts per protocol at the same cost at any table size (no count(*)
-- per request). Expand only: three new columns with a default, and
-- store_messages replaced with the same signature and results; servers of
-- the previous release go on calling it unchanged.
-- depends: 0001-baseline

-- ADD COLUMN takes the table's ACCESS EXCLUSIVE lock until this migration
-- commits: no writer is between its counter lock and its commit while the
-- counts below are taken, so they add up to `total` exactly.
ALTER TABLE stream ADD COLUMN IF NOT EXISTS grpc_total bigint NOT NULL DEFAULT 0;
ALTER TABLE stream ADD COLUMN IF NOT EXISTS rest_total bigint NOT NULL DEFAULT 0;
ALTER TABLE stream ADD COLUMN IF NOT EXISTS rabbitmq_total bigint NOT NULL DEFAULT 0;

-- Once, from the messages already stored (harmless when run again).
UPDATE stream SET
    grpc_total     = counts.grpc,
    rest_total     = counts.rest,
    rabbitmq_total = counts.rabbitmq
FROM (
    SELECT coalesce(sum(n) FILTER (WHERE via = 'GRPC'), 0)     AS grpc,
           coalesce(sum(n) FILTER (WHERE via = 'REST'), 0)     AS rest,
           coalesce(sum(n) FILTER (WHERE via = 'RabbitMQ'), 0) AS rabbitmq
    FROM (SELECT via, count(*) AS n FROM messages GROUP BY via) AS per_via
) AS counts;

-- As in 0001-baseline, and the number stored is also added to its protocol's
-- column in the same UPDATE of the counter row.
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
        UPDATE stream SET
            total          = v_total,
            grpc_total     = grpc_total     + CASE WHEN p_via = 'GRPC'     THEN v_stored ELSE 0 END,
            rest_total     = rest_total     + CASE WHEN p_via = 'REST'     THEN v_stored ELSE 0 END,
            rabbitmq_total = rabbitmq_total + CASE WHEN p_via = 'RabbitMQ' THEN v_stored ELSE 0 END;
        PERFORM pg_notify('messages', v_total::text);
    END IF;
END;
$$;
