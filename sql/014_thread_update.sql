-- 014_thread_update.sql - the merge in postroom_thread_email planned with
-- its values. Migration 009's function runs with plan_cache_mode =
-- force_generic_plan (its threads query was planned again at most calls
-- otherwise), so the UPDATE that moves the merged threads' emails to the
-- winner kept one generic plan per connection. Made early, on a nearly
-- empty table, that plan was a sequential scan of emails; it cost 0.47 ms
-- a call at one LMTP session and 0.9-1.0 ms at eight, where an update of
-- the few rows through emails_thread_idx costs 0.06-0.13 ms
-- (pg_stat_statements, track = all, the 2,306 messages of
-- bench/lmtp-bench; doc/BENCHMARKS.md). The two UPDATEs (the OR of 009
-- split in its two cases) now go through EXECUTE, planned each time with
-- the threads involved; they run only when a message joins or merges
-- threads. Nothing else changes: same locks, same result.
-- Grants: the function keeps the decisions of 012 (CREATE OR REPLACE
-- keeps its privileges).

CREATE OR REPLACE FUNCTION postroom_thread_email(new_id uuid) RETURNS uuid
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan AS $$
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
    SELECT COALESCE(array_agg(p), '{}') INTO parts FROM postroom_email_participants(new_id) p;
    -- the Message-Ids it names: In-Reply-To and the last
    -- postroom_thread_refs_max() References (inline, as every query here:
    -- PL/pgSQL keeps its plans, a SQL function's body is planned at each call)
    SELECT COALESCE(array_agg(DISTINCT m), '{}') INTO named
      FROM unnest(ARRAY[me_irt] || me_refs[array_upper(me_refs, 1)
                                                    - postroom_thread_refs_max() + 1:]) AS u(m)
     WHERE m IS NOT NULL AND m <> '';

    FOR k IN SELECT DISTINCT hashtextextended('postroom-mid:' || m, 0)
               FROM unnest(me_mid || named) AS u(m)
              WHERE m IS NOT NULL AND m <> '' ORDER BY 1 LOOP
        PERFORM pg_advisory_xact_lock(k);
    END LOOP;

    LOOP
        -- the threads it connects: its own, its parents', its children's
        -- (inline, not a SQL function: PL/pgSQL keeps this plan, a SQL
        -- function's body is planned again at every call)
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
        -- nothing related (most mail): its own thread, nothing to lock or
        -- merge (the Message-Id locks above order it against any related
        -- delivery)
        IF cardinality(locked) = 0 AND cardinality(threads) = 1 THEN
            IF me_tid IS NULL THEN -- a row written without one
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

    SELECT w.id INTO STRICT winner FROM (
        SELECT f.id, f.received_at FROM unnest(threads) AS u(x),
               LATERAL (SELECT e.id, e.received_at FROM emails e WHERE e.thread_id = u.x
                         ORDER BY e.received_at, e.id LIMIT 1) f
        UNION ALL
        SELECT e.id, e.received_at FROM emails e WHERE e.id = ANY (threads) AND e.thread_id IS NULL
    ) w ORDER BY w.received_at, w.id LIMIT 1;
    -- planned with the values (EXECUTE): the threads merged are few rows
    -- found by emails_thread_idx; the generic plan, made while the table
    -- was small, scanned the whole table
    EXECUTE 'UPDATE emails SET thread_id = $1 WHERE thread_id = ANY ($2)'
      USING winner, array_remove(threads, winner);
    EXECUTE 'UPDATE emails SET thread_id = $1 WHERE id = ANY ($2) AND thread_id IS NULL'
      USING winner, threads;
    RETURN winner;
END $$;
