-- 009_thread_merge.sql - a message joins every thread it connects.
-- Until now the parent was the first stored message found among
-- In-Reply-To and References (last to first): J with In-Reply-To A and
-- References B A joined A's thread and left B's alone, so the end state
-- depended on the order of arrival. Now the new email's thread is the
-- merge of its own thread and of the threads of
--   * every message it names (In-Reply-To, and the last 64 References:
--     postroom_thread_refs_max, the same bound as the parser's MIME_REFS_MAX),
--     for each Message-Id the earliest stored email with it that shares a
--     participant (From, To, Cc or an envelope recipient) with the new one;
--   * every stored message naming it the same way (In-Reply-To or one of
--     its last 64 reference_ids) that shares a participant with it, unless
--     an older email with the new one's Message-Id is that message's
--     parent already (the earliest eligible wins, in both directions).
-- The merged thread keeps the id of its oldest email (received_at, then
-- id), the new one included, so thread_id stays the id of the thread's
-- first email and the end state is the same whatever the order of arrival.
-- Work is bounded: at most 65 Message-Ids are looked up or locked however
-- many a row names.
--
-- Locks: the advisory transaction locks on the Message-Ids involved
-- (sorted) as before, then on the threads involved. A thread lock is waited
-- for only when its key is above every thread key this transaction holds
-- (remembered in the transaction-local setting postroom.thread_lock_top,
-- so the several calls of a group commit count too); a thread found later
-- with a lower key is only tried, and when another delivery holds it the
-- transaction fails with serialization_failure (40001), which the store
-- retries. So two deliveries never wait for each other in a cycle.

-- postroom_thread_refs_max - how many References (the last ones) count
CREATE OR REPLACE FUNCTION postroom_thread_refs_max() RETURNS integer
LANGUAGE sql IMMUTABLE AS 'SELECT 64';

-- plan_cache_mode: with array parameters (the Message-Ids named) the plan
-- cache chose a custom plan for the threads query at most calls, planning
-- it again each time (1,089 plans for 2,587 calls, 0.23 ms a plan, in
-- pg_stat_statements with track_planning); the generic plan is the same
-- index scans.
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
    UPDATE emails SET thread_id = winner
     WHERE (thread_id = ANY (array_remove(threads, winner))
            OR (thread_id IS NULL AND id = ANY (threads)));
    RETURN winner;
END $$;
