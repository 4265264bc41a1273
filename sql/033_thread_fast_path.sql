-- 033_thread_fast_path.sql - threading returns early for a message that
-- names nothing and that nothing stored names (issue 23: LMTP rate)
--
-- Most mail starts a thread: no In-Reply-To, no References, and no stored
-- message names its Message-Id. postroom_thread_email (015) still read
-- the new email's participants and ran the whole threads query for it
-- (parents, children with their participants and the "older parent"
-- rule): bench/lmtp-ceiling measured threading at 0.30 ms of
-- PostgreSQL's CPU a message at one LMTP session, a quarter of the
-- storing transaction's. Now, once the Message-Id locks are held, such a
-- message is answered with one index probe: if it names nothing and no
-- stored email has its Message-Id as In-Reply-To or among its
-- reference_ids, the threads query could only have found its own thread,
-- which is what it returns (the same result, under the same locks; the
-- participants are read only when the query runs). A message that names
-- something, or is named, goes the way it went.
--
-- enable_seqscan = off: the probe's generic plan (force_generic_plan,
-- kept for the connection's life) is made at its first call, on a
-- database that may be nearly empty, where a sequential scan of emails
-- looks cheapest and then stays as the table grows (measured: slower
-- than before 033). jit = off beside it, as 015 does for its functions:
-- with sequential scans off, a statement that can only scan (a trigger
-- under postroom_thread_merged) costs over jit_above_cost and would be
-- compiled at every call.
--
-- Only the function's body and settings change, its signature stays:
-- compatible with builds of version 29 and later.
-- postroom: compatible_from 29

CREATE OR REPLACE FUNCTION postroom_thread_email(new_id uuid) RETURNS uuid
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan SET enable_seqscan = off SET jit = off
AS $$
DECLARE
    me_mid  text;
    me_irt  text;
    me_refs text[];
    me_recv timestamptz;
    me_tid  uuid;
    parts   text[];
    named   text[];
    k       bigint;
    t       uuid;
    top     bigint := NULLIF(current_setting('postroom.thread_lock_top', true), '')::bigint;
    threads uuid[];
    locked  uuid[] := '{}';
    winner  uuid;
BEGIN
    SELECT message_id, in_reply_to, reference_ids, received_at, thread_id
      INTO STRICT me_mid, me_irt, me_refs, me_recv, me_tid
      FROM emails WHERE id = new_id;
    -- the Message-Ids it names: In-Reply-To and the last
    -- postroom_thread_refs_max() References
    SELECT COALESCE(array_agg(DISTINCT m), '{}') INTO named
      FROM unnest(ARRAY[me_irt] || me_refs[array_upper(me_refs, 1)
                                                    - postroom_thread_refs_max() + 1:]) AS u(m)
     WHERE m IS NOT NULL AND m <> '';

    FOR k IN SELECT DISTINCT hashtextextended('postroom-mid:' || m, 0)
               FROM unnest(me_mid || named) AS u(m)
              WHERE m IS NOT NULL AND m <> '' ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;

    -- names nothing and nothing names it (most mail): its own thread, as
    -- the threads query below would find (no parent to look up, and no
    -- child row for its children part); under the Message-Id lock, a
    -- related delivery is ordered before or after this one
    IF cardinality(named) = 0 AND me_tid IS NOT NULL
       AND (me_mid IS NULL OR me_mid = ''
            OR NOT EXISTS (SELECT 1 FROM emails c
                            WHERE c.id <> new_id
                              AND (c.in_reply_to = me_mid OR c.reference_ids @> ARRAY[me_mid]))) THEN
        RETURN me_tid;
    END IF;
    SELECT COALESCE(array_agg(p), '{}') INTO parts FROM postroom_email_participants(new_id) p;

    LOOP
        SELECT array_agg(DISTINCT x ORDER BY x) INTO threads FROM (
            SELECT COALESCE(thread_id, id) AS x FROM emails WHERE id = new_id
            UNION ALL
            SELECT x FROM (
                SELECT DISTINCT ON (e.message_id) COALESCE(e.thread_id, e.id) AS x
                  FROM emails e
                 WHERE e.message_id = ANY (named) AND e.id <> new_id
                   AND EXISTS (SELECT 1 FROM postroom_email_participants(e.id) p
                                WHERE p = ANY (parts))
                 ORDER BY e.message_id, e.received_at, e.id) parents
            UNION ALL
            SELECT COALESCE(c.thread_id, c.id) FROM emails c
             WHERE me_mid IS NOT NULL AND me_mid <> '' AND c.id <> new_id
               AND (c.in_reply_to = me_mid OR c.reference_ids @> ARRAY[me_mid])
               AND (c.in_reply_to = me_mid
                    OR me_mid = ANY (c.reference_ids[array_upper(c.reference_ids, 1)
                                                 - postroom_thread_refs_max() + 1:]))
               AND EXISTS (SELECT 1 FROM postroom_email_participants(c.id) p WHERE p = ANY (parts))
               AND NOT EXISTS (
                   SELECT 1 FROM emails o
                    WHERE o.message_id = me_mid AND o.id <> new_id AND o.id <> c.id
                      AND (o.received_at, o.id) < (me_recv, new_id)
                      AND EXISTS (SELECT 1 FROM postroom_email_participants(o.id) po
                                    JOIN postroom_email_participants(c.id) pc ON po = pc))
        ) s;
        IF cardinality(locked) = 0 AND cardinality(threads) = 1 THEN
            IF me_tid IS NULL THEN
                UPDATE emails SET thread_id = new_id WHERE id = new_id;
            END IF;
            RETURN threads[1];
        END IF;
        EXIT WHEN threads <@ locked;
        FOR t, k IN SELECT x, hashtextextended('postroom-thread:' || x::text, 0)
                      FROM unnest(threads) AS u(x) WHERE NOT x = ANY (locked) ORDER BY 2 LOOP
            IF top IS NULL OR k > top THEN
                PERFORM pg_advisory_xact_lock(k);
                top := k;
            ELSIF NOT pg_try_advisory_xact_lock(k) THEN
                RAISE EXCEPTION 'postroom_thread_email: thread % is being merged by another delivery', t
                      USING ERRCODE = 'serialization_failure';
            END IF;
            locked := locked || t;
        END LOOP;
        PERFORM set_config('postroom.thread_lock_top', top::text, true);
    END LOOP;

    -- the thread whose oldest member is the oldest keeps its id
    SELECT w.x INTO STRICT winner FROM (
        SELECT u.x, f.received_at, f.id FROM unnest(threads) AS u(x),
               LATERAL (SELECT e.id, e.received_at FROM emails e WHERE e.thread_id = u.x
                         ORDER BY e.received_at, e.id LIMIT 1) f
        UNION ALL
        SELECT e.id, e.received_at, e.id FROM emails e WHERE e.id = ANY (threads) AND e.thread_id IS NULL
    ) w ORDER BY w.received_at, w.id LIMIT 1;
    EXECUTE 'UPDATE emails SET thread_id = $1 WHERE thread_id = ANY ($2)'
      USING winner, array_remove(threads, winner);
    EXECUTE 'UPDATE emails SET thread_id = $1 WHERE id = ANY ($2) AND thread_id IS NULL'
      USING winner, threads;
    -- the threads that took the winner's id (not this email's own, which
    -- nobody outside this transaction has seen)
    threads := array_remove(array_remove(threads, winner), new_id);
    IF cardinality(threads) > 0 THEN
        PERFORM postroom_thread_merged(new_id, winner, threads);
    END IF;
    RETURN winner;
END $$;

