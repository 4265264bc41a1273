-- 018_events.sql - the outbox (issue 19 part 1): one event per user
-- concerned, written in the transaction of the change it reports, read by
-- position without ever skipping one.
--
-- Kinds (doc/schema.md "Events"):
--   new           a delivery put the email in the user's mailbox
--   sent          the user's sent copy (emails.sent_by_user_id set)
--   link          stored mail became the user's later: a user or alias
--                 created for its address, or a later delivery that
--                 marks a recipient delivered
--   thread_merge  threads the user has mail in became one
--   read unread flagged unflagged trash restore delete expunge
--                 the mailbox lifecycle (migration 015's hook
--                 postroom_mailbox_changed, replaced here)
-- Every kind but thread_merge comes through migration 015's hook
-- postroom_mailbox_changed (replaced here), called in the transaction of
-- every membership change: new, sent and link when a membership appears
-- (a user who has the email already gets no second event when it is
-- delivered to another of their addresses), the others from the state
-- functions and expunge. thread_merge comes from postroom_thread_email
-- (replaced here too).
--
-- Positions. They are taken from a sequence before commit, so
-- transactions commit out of order. Every writer takes
-- pg_advisory_xact_lock_shared(K) before nextval (the column default
-- postroom_event_position() does both, in that order), and holds it to
-- its end. The reader postroom_events_read takes the session-level
-- EXCLUSIVE lock K and releases it at once: it is granted only when no
-- transaction that holds a position is still running. While holding it,
-- it reads the sequence's last value HI: every position <= HI belongs to
-- a transaction that has committed or aborted. Then, in a new statement
-- (a new snapshot: READ COMMITTED only), it returns the events with
-- since < position <= HI. A position above HI is returned by a later read,
-- so a consumer that resumes from the last position it saw never skips
-- an event. Writers never wait for each other (shared locks); a reader
-- waits only for the transactions in flight. K is
-- hashtextextended('postroom-events', 0) = -1518556285451084410.
--
-- Retention: postroom_events_prune deletes events older than a period
-- (default 7 days) in batches, lowest positions first, and raises
-- events_horizon.pruned_through; a read from a position below it fails
-- with SQLSTATE PR101 "position expired: resync", never a silent jump.

CREATE SEQUENCE events_position_seq AS bigint CACHE 1;

-- postroom_event_position - the next position, under the writers' lock
-- (its callers are SECURITY DEFINER functions that pin search_path).
-- plpgsql, not sql: a two-statement sql function is parsed and planned
-- again by every statement that calls it (each INSERT into events);
-- plpgsql keeps both expressions for the connection.
CREATE FUNCTION postroom_event_position() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(-1518556285451084410);
    RETURN nextval('events_position_seq');
END $$;

CREATE TABLE events (
    position    bigint PRIMARY KEY DEFAULT postroom_event_position(),
    id          uuid NOT NULL DEFAULT gen_random_uuid(),
    kind        text NOT NULL,  -- doc/schema.md "Events" lists them
    user_id     uuid NOT NULL,  -- no foreign key: a removed user's events stay
    email_id    uuid,           -- none: the email may be expunged
    addresses   text[],         -- new, link: the user's addresses it was delivered to
    data        jsonb,          -- thread_merge: {"thread_id": winner, "merged": [ids]}
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_user_idx ON events (user_id, position);

-- One row: every position up to pruned_through may have been pruned.
CREATE TABLE events_horizon (
    one             boolean PRIMARY KEY DEFAULT true CHECK (one),
    pruned_through  bigint NOT NULL DEFAULT 0
);
INSERT INTO events_horizon DEFAULT VALUES;

-- postroom_events_notify - NOTIFY postroom_events with the statement's
-- highest position (listeners read from their own last position)
CREATE FUNCTION postroom_events_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postroom_events', max(n.position)::text)
       FROM new_events n HAVING max(n.position) IS NOT NULL;
    RETURN NULL;
END $$;
CREATE TRIGGER events_notify AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_events_notify();

-- postroom_events_thread_merge - 'thread_merge' for every user with mail
-- in thread winner: the threads merged took its id (called by
-- postroom_thread_merged, below, in deliver's transaction)
CREATE FUNCTION postroom_events_thread_merge(p_email uuid, p_winner uuid, p_merged uuid[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO events (kind, user_id, email_id, data)
    SELECT 'thread_merge', u.user_id, p_email,
           jsonb_build_object('thread_id', p_winner, 'merged', to_jsonb(p_merged))
      FROM (SELECT DISTINCT m.user_id FROM emails e JOIN mailbox_entries m ON m.email_id = e.id
             WHERE e.thread_id = p_winner) u
     ORDER BY u.user_id;
END $$;

-- postroom_mailbox_changed - migration 015's hook, called in the
-- transaction of every membership change: one event per email for the
-- user; new and link carry the user's addresses it was delivered to
CREATE OR REPLACE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_kind IS NULL OR p_user IS NULL OR p_emails IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO events (kind, user_id, email_id, addresses)
    SELECT p_kind, p_user, x.e,
           CASE WHEN p_kind IN ('new', 'link') THEN
               (SELECT array_agg(DISTINCT lower(r.address) ORDER BY lower(r.address))
                  FROM email_recipients r
                 WHERE r.email_id = x.e AND r.user_id = p_user AND r.delivered)
           END
      FROM (SELECT DISTINCT u.e FROM unnest(p_emails) AS u(e) WHERE u.e IS NOT NULL) x
     ORDER BY x.e;
END $$;

-- postroom_events_head - the highest position a read may return now:
-- every position up to it is final (committed or aborted). A consumer
-- with no position yet that wants only what comes next starts here.
CREATE FUNCTION postroom_events_head() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    hi bigint;
BEGIN
    BEGIN
        PERFORM pg_advisory_lock(-1518556285451084410);
        SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END
          INTO hi FROM events_position_seq s;
        PERFORM pg_advisory_unlock(-1518556285451084410);
    EXCEPTION WHEN OTHERS THEN
        -- never leave the session holding K: it would stop every writer
        IF EXISTS (SELECT 1 FROM pg_locks l
                    WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                      AND l.mode = 'ExclusiveLock' AND l.granted
                      AND l.classid = ((-1518556285451084410::bigint >> 32) & 4294967295)::oid
                      AND l.objid = (-1518556285451084410::bigint & 4294967295)::oid
                      AND l.objsubid = 1) THEN
            PERFORM pg_advisory_unlock(-1518556285451084410);
        END IF;
        RAISE;
    END;
    RETURN hi;
END $$;

-- postroom_events_read - the events after position p_since (NULL: from
-- the oldest kept), at most p_limit, in position order; only p_user's
-- when given. Exact: resuming from the last position returned never
-- skips an event (see the top of this file). SQLSTATE PR101 when events
-- after p_since were pruned ("position expired: resync"), PR102 when
-- called in a REPEATABLE READ or SERIALIZABLE transaction (its snapshot
-- could not see what committed after the wait).
CREATE FUNCTION postroom_events_read(p_since bigint, p_limit integer DEFAULT 1000,
                                     p_user uuid DEFAULT NULL)
RETURNS TABLE ("position" bigint, id uuid, kind text, user_id uuid, user_address text,
               email_id uuid, addresses text[], thread_id uuid, data jsonb,
               created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    hi bigint;
    h  bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'postroom_events_read needs READ COMMITTED, not %',
              upper(current_setting('transaction_isolation'))
              USING ERRCODE = 'PR102';
    END IF;
    SELECT eh.pruned_through INTO h FROM events_horizon eh;
    IF p_since < h THEN
        RAISE EXCEPTION 'position % expired: resync', p_since USING ERRCODE = 'PR101',
              DETAIL = format('events up to position %s were pruned', h);
    END IF;
    hi := postroom_events_head();
    -- a new statement: a snapshot taken after every position <= hi ended
    RETURN QUERY
    SELECT ev.position, ev.id, ev.kind, ev.user_id, u.address, ev.email_id, ev.addresses,
           e.thread_id, ev.data, ev.created_at
      FROM events ev
      LEFT JOIN users u ON u.id = ev.user_id
      LEFT JOIN emails e ON e.id = ev.email_id
     WHERE ev.position > COALESCE(p_since, 0) AND ev.position <= hi
       AND (p_user IS NULL OR ev.user_id = p_user)
     ORDER BY ev.position
     LIMIT GREATEST(COALESCE(p_limit, 1000), 1);
    -- a prune that committed meanwhile: fail rather than return a gap
    SELECT eh.pruned_through INTO h FROM events_horizon eh;
    IF p_since < h THEN
        RAISE EXCEPTION 'position % expired: resync', p_since USING ERRCODE = 'PR101',
              DETAIL = format('events up to position %s were pruned', h);
    END IF;
END $$;

-- postroom_events_prune - delete at most p_limit events older than
-- p_keep, lowest positions first; the number deleted (0: done). One short
-- transaction per call: postroomctl events prune loops.
CREATE FUNCTION postroom_events_prune(p_keep interval DEFAULT '7 days',
                                      p_limit integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n   integer;
    top bigint;
BEGIN
    WITH d AS (
        DELETE FROM events WHERE position IN (
            SELECT ev.position FROM events ev WHERE ev.created_at < now() - p_keep
             ORDER BY ev.position LIMIT GREATEST(COALESCE(p_limit, 10000), 1))
        RETURNING position)
    SELECT count(*), max(d.position) INTO n, top FROM d;
    IF top IS NOT NULL THEN
        UPDATE events_horizon SET pruned_through = GREATEST(pruned_through, top);
    END IF;
    RETURN n;
END $$;

-- postroom_thread_merged - 015's hook for a merge, now the thread_merge
-- event (postroom_thread_email calls it in deliver's transaction).
CREATE OR REPLACE FUNCTION postroom_thread_merged(p_email uuid, p_winner uuid, p_merged uuid[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
    PERFORM postroom_events_thread_merge(p_email, p_winner, p_merged);
END $$;

SELECT postroom_grants('SEQUENCE events_position_seq', '');
SELECT postroom_grants('TABLE events', 'admin=SELECT; webhook=SELECT');
SELECT postroom_grants('TABLE events_horizon', 'admin=SELECT; webhook=SELECT');
SELECT postroom_grants('FUNCTION postroom_event_position()', '');
-- (migration 015's decision, unchanged: nobody calls the hook directly)
SELECT postroom_grants('FUNCTION postroom_mailbox_changed(text,uuid,uuid[])', '');
SELECT postroom_grants('FUNCTION postroom_events_notify()', '');
-- called by postroom_thread_email, which runs as deliver
SELECT postroom_grants('FUNCTION postroom_events_thread_merge(uuid,uuid,uuid[])', 'deliver=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_events_head()', 'app=EXECUTE; admin=EXECUTE; webhook=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_events_read(bigint,integer,uuid)',
    'app=EXECUTE; admin=EXECUTE; webhook=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_events_prune(interval,integer)', 'admin=EXECUTE');
