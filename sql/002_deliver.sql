-- 002_deliver.sql - what postroom-deliver needs beyond the initial schema:
-- indexes to find the children of a message, and threading as one
-- function that runs inside the delivery's transaction.

-- Stored replies to a message: by In-Reply-To and by References.
CREATE INDEX emails_in_reply_to_idx ON emails (in_reply_to) WHERE in_reply_to IS NOT NULL;
CREATE INDEX emails_reference_ids_idx ON emails USING gin (reference_ids);

-- The participants of an email (lower case): From, To, Cc and every
-- envelope recipient (a delivered row). Threads never join emails that
-- share none of them.
CREATE FUNCTION postroom_email_participants(e uuid) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
    SELECT lower(from_address) FROM emails WHERE id = e AND from_address <> ''
    UNION
    SELECT lower(address) FROM email_recipients
     WHERE email_id = e AND (type IN ('to', 'cc') OR delivered)
$$;

-- postroom_thread_email - put a freshly inserted email into its thread.
-- Parent: the In-Reply-To message, else the nearest stored id of
-- References (last to first); among several stored emails with that
-- Message-Id the earliest that shares a participant wins. Children that
-- arrived first (they reference this Message-Id and share a participant)
-- are adopted. All threads so connected become one: the thread whose
-- first email is the oldest keeps its id (a thread id is always the id of
-- the thread's first stored email). Concurrency: advisory transaction
-- locks on every Message-Id involved (sorted), then on every thread id
-- involved, re-reading until the set of threads is stable under the locks.
CREATE FUNCTION postroom_thread_email(new_id uuid) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    me      emails%ROWTYPE;
    parts   text[];
    parent  uuid;
    mid     text;
    k       bigint;
    t       uuid;
    threads uuid[];
    locked  uuid[] := '{}';
    winner  uuid;
BEGIN
    SELECT * INTO STRICT me FROM emails WHERE id = new_id;
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
    UPDATE emails SET thread_id = winner WHERE id = new_id;
    RETURN winner;
END $$;

-- Applications may LISTEN instead of running an HTTP endpoint:
-- postroom-deliver sends NOTIFY postroom_new_email, '<email id>' in the
-- delivery's transaction (nothing to create for that here).
