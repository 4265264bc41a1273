-- 008_thread_fast.sql - the same threading (002_deliver.sql), cheaper.
-- postroom_thread_email read the whole new row into a %ROWTYPE variable,
-- which detoasts and decompresses its text and HTML bodies, and always
-- updated the new row's thread_id, which writes a second version of the
-- row and a new entry in every index of emails. It now reads only the
-- four columns it uses, and the new row is updated only when it joins an
-- existing thread: postroom stores a new email with thread_id = id (its
-- own thread) from the start. A row inserted with thread_id NULL (an
-- older postroom-deliver) still gets its thread_id set, as before.
CREATE OR REPLACE FUNCTION postroom_thread_email(new_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    me      record;
    parts   text[];
    parent  uuid;
    mid     text;
    k       bigint;
    t       uuid;
    threads uuid[];
    locked  uuid[] := '{}';
    winner  uuid;
BEGIN
    SELECT message_id, in_reply_to, reference_ids, thread_id INTO STRICT me
      FROM emails WHERE id = new_id;
    SELECT COALESCE(array_agg(p), '{}') INTO parts FROM postroom_email_participants(new_id) p;

    FOR k IN SELECT DISTINCT hashtextextended('postroom-mid:' || m, 0)
               FROM unnest(ARRAY[me.message_id, me.in_reply_to] || me.reference_ids) AS u(m)
              WHERE m IS NOT NULL AND m <> '' ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;

    LOOP
        parent := NULL;
        FOR mid IN SELECT x FROM (
                       SELECT me.in_reply_to AS x, 0 AS o
                       UNION ALL
                       SELECT r, cardinality(me.reference_ids) - n + 1
                         FROM unnest(me.reference_ids) WITH ORDINALITY AS u(r, n)) s
                    WHERE x IS NOT NULL ORDER BY o LOOP
            SELECT e.id INTO parent FROM emails e
             WHERE e.message_id = mid AND e.id <> new_id
               AND EXISTS (SELECT 1 FROM postroom_email_participants(e.id) p WHERE p = ANY (parts))
             ORDER BY e.received_at, e.id LIMIT 1;
            EXIT WHEN parent IS NOT NULL;
        END LOOP;

        SELECT array_agg(DISTINCT x ORDER BY x) INTO threads FROM (
            SELECT COALESCE(e.thread_id, e.id) AS x FROM emails e WHERE e.id = parent
            UNION
            SELECT COALESCE(c.thread_id, c.id) FROM emails c
             WHERE c.id <> new_id
               AND (c.in_reply_to = me.message_id OR c.reference_ids @> ARRAY[me.message_id])
               AND EXISTS (SELECT 1 FROM postroom_email_participants(c.id) p WHERE p = ANY (parts))
        ) s;
        EXIT WHEN threads IS NULL OR threads <@ locked;
        FOREACH t IN ARRAY threads LOOP
            IF NOT t = ANY (locked) THEN
                PERFORM pg_advisory_xact_lock(hashtextextended('postroom-thread:' || t::text, 0));
                locked := locked || t;
            END IF;
        END LOOP;
    END LOOP;

    IF threads IS NULL THEN
        winner := new_id;
    ELSE
        SELECT COALESCE(e.thread_id, e.id) INTO winner FROM emails e
         WHERE COALESCE(e.thread_id, e.id) = ANY (threads) AND e.id <> new_id
         ORDER BY e.received_at, e.id LIMIT 1;
        UPDATE emails SET thread_id = winner
         WHERE (thread_id = ANY (threads) OR (thread_id IS NULL AND id = ANY (threads)))
           AND thread_id IS DISTINCT FROM winner;
    END IF;
    IF me.thread_id IS DISTINCT FROM winner THEN
        UPDATE emails SET thread_id = winner WHERE id = new_id;
    END IF;
    RETURN winner;
END $$;
