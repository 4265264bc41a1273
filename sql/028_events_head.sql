-- 028_events_head.sql - the outbox's read no longer stalls its writers
-- (issue 19 number 1: the LMTP rate with a follower reading along).
--
-- What 018 did. Every writer took pg_advisory_xact_lock_shared(K) before
-- nextval; postroom_events_head took the session-level EXCLUSIVE lock K
-- and released it. While that exclusive request waited for the writers in
-- flight, every NEW writer's shared request queued behind it (PostgreSQL
-- grants a lock's waiters in order), so a follower reading after each
-- notification stalled all delivery for a commit's time, ~100 times a
-- second (0.67-0.70x of the rate without the outbox; 0.88x without the
-- follower).
--
-- Now. Each writer takes an EXCLUSIVE transaction lock on a key of its
-- own, pg_advisory_xact_lock(K1, pg_backend_pid()) (the two-int form;
-- K1 = 1886531897, 'pr19' in ASCII), before nextval (the column default
-- postroom_event_position() does both, in that order), and holds it to
-- its transaction's end. Nobody else takes that key exclusively, so
-- writers never wait for each other or for a reader's request. The reader
-- postroom_events_head:
--   (1) reads the sequence's last value L;
--   (2) in a NEW statement, reads from pg_locks the backends holding a
--       K1 key (classid = K1, objsubid = 2: the two-int form; objid is
--       the writer's pid; granted, ExclusiveLock, this database);
--   (3) waits for each still in that transaction:
--       pg_advisory_lock_shared(K1, pid) and at once
--       pg_advisory_unlock_shared (session level, so it never outlives
--       the call). It waits only for those transactions and never queues
--       in front of a writer that has not yet taken its lock: another
--       backend's key is not the one that writer asks for;
--   (4) returns L; postroom_events_read then returns, in a new statement
--       (a new snapshot, READ COMMITTED), the events with position <= L.
--
-- Why no event with a position <= L can be missed. A writer W whose event
-- has position p <= L called nextval before the reader read L (the
-- sequence is read outside any snapshot: nextval's value is there at
-- once), and W took its K1 key before nextval, in the transaction the
-- event belongs to. So at (2), which comes after (1), W's key is in
-- pg_locks unless W's transaction has ended (committed or aborted);
-- the reader then waits, in (3), until W ends. A transaction's lock is
-- released only after its commit is visible to new snapshots (PostgreSQL
-- releases locks after ProcArrayEndTransaction), so the snapshot of (4)
-- sees W's event or W aborted. Every position <= L is therefore final
-- when (4) reads: committed and visible, or gone for good.
-- - A subtransaction that aborts (a savepoint, a plpgsql exception block)
--   releases a K1 key it took first, but its event rows go with it: the
--   positions it took have no event. A key already held by the
--   transaction before the subtransaction stays held.
-- - A pid reused: the writer's transaction ended between (2) and (3) and
--   the same backend began a new one and took its key again (the common
--   case with busy lmtpd connections). (2) also reads each holder's
--   virtualtransaction; in (3) a key that is free
--   (pg_try_advisory_lock_shared) or held by another virtualtransaction
--   than in (2) means the transaction seen has ended: a later one began
--   after (2), after (1), so its positions are above L, and the reader
--   does not wait for it. Only a key still held by the same transaction
--   is waited for. Should the holder change between that check and the
--   wait, the reader waits for the new transaction too: a later read,
--   never a missed event. A writer that asks for its key while the reader
--   holds or queues for the shared lock on it waits for the reader's
--   lock-and-unlock, one backend at a time, never all writers.
-- - A prepared transaction (PREPARE TRANSACTION; postroom never uses
--   them) keeps its key under its old pid's objid: waited for the same way.
-- - A reader that is itself a writer (its own transaction holds its K1
--   key) would see its own uncommitted events and could hand out
--   positions that roll back: refused, SQLSTATE PR104.
-- - A writer still running 018's function while this migration is
--   applied holds the old shared K, not a K1 key: when pg_locks shows such
--   a holder (only during an upgrade), the reader also waits for it the
--   old way (exclusive K, released at once).
-- - The exception path: an error or a cancel (lock_timeout,
--   statement_timeout) while waiting or between a lock and its unlock
--   releases every session lock of the reader on a K1 key (and K) before
--   it re-raises: a lock left would stop that writer's backend for good.
--
-- K = hashtextextended('postroom-events', 0) = -1518556285451084410 (018).

-- postroom_event_position - the next position, under the writer's own
-- K1 key (its callers are SECURITY DEFINER functions that pin search_path)
CREATE OR REPLACE FUNCTION postroom_event_position() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(1886531897, pg_backend_pid());
    RETURN nextval('events_position_seq');
END $$;

-- postroom_events_head - the highest position a read may return now:
-- every position up to it is final (committed or aborted). A consumer
-- with no position yet that wants only what comes next starts here.
-- SQLSTATE PR104 when the caller's transaction has written events.
CREATE OR REPLACE FUNCTION postroom_events_head() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    hi    bigint;
    db    oid;
    pids  integer[];
    vxids text[];
    old   boolean;
    i     integer;
BEGIN
    -- (1) the last position taken
    SELECT CASE WHEN s.is_called THEN s.last_value ELSE s.last_value - 1 END
      INTO hi FROM events_position_seq s;
    -- (2) a new statement: the writers holding a position now, and the
    -- transaction of each (a key is exclusive: one holder)
    SELECT d.oid INTO db FROM pg_database d WHERE d.datname = current_database();
    SELECT array_agg(l.objid::text::integer) FILTER (WHERE l.objsubid = 2),
           array_agg(l.virtualtransaction) FILTER (WHERE l.objsubid = 2),
           COALESCE(bool_or(l.objsubid = 1), false)
      INTO pids, vxids, old
      FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.database = db
       AND ((l.objsubid = 2 AND l.classid = 1886531897 AND l.mode = 'ExclusiveLock')
         OR (l.objsubid = 1 AND l.mode = 'ShareLock'
             AND l.classid = ((-1518556285451084410::bigint >> 32) & 4294967295)::oid
             AND l.objid = (-1518556285451084410::bigint & 4294967295)::oid));
    IF pg_backend_pid() = ANY (pids) THEN
        RAISE EXCEPTION 'postroom_events_read in a transaction that wrote events'
              USING ERRCODE = 'PR104',
                    HINT = 'read in a transaction of its own: it would see its own uncommitted events';
    END IF;
    -- (3) wait for those transactions that are still running, one at a
    -- time, never queuing before other writers; pids[i] NULL: ended
    BEGIN
        LOOP
            -- a free key: that transaction has ended
            FOR i IN 1 .. COALESCE(array_length(pids, 1), 0) LOOP
                CONTINUE WHEN pids[i] IS NULL;
                IF pg_try_advisory_lock_shared(1886531897, pids[i]) THEN
                    PERFORM pg_advisory_unlock_shared(1886531897, pids[i]);
                    pids[i] := NULL;
                END IF;
            END LOOP;
            EXIT WHEN pids IS NULL OR array_length(array_remove(pids, NULL), 1) IS NULL;
            -- a key held by another transaction than in (2): a later one
            -- of that backend, begun after (2), with positions above hi
            -- (one look at pg_locks for all of them)
            SELECT array_agg(CASE WHEN (w.pid, w.vx) IN (
                       SELECT l.objid::text::integer, l.virtualtransaction
                         FROM pg_locks l
                        WHERE l.locktype = 'advisory' AND l.granted AND l.database = db
                          AND l.objsubid = 2 AND l.classid = 1886531897
                          AND l.mode = 'ExclusiveLock')
                       THEN w.pid END ORDER BY w.o)
              INTO pids
              FROM unnest(pids, vxids) WITH ORDINALITY AS w(pid, vx, o);
            SELECT min(u.o) INTO i FROM unnest(pids) WITH ORDINALITY AS u(p, o)
             WHERE u.p IS NOT NULL;
            EXIT WHEN i IS NULL;
            -- wait for the first still running, then look at the others again
            PERFORM pg_advisory_lock_shared(1886531897, pids[i]);
            PERFORM pg_advisory_unlock_shared(1886531897, pids[i]);
            pids[i] := NULL;
        END LOOP;
        IF old THEN -- 018's writers, only while this migration is applied
            PERFORM pg_advisory_lock(-1518556285451084410);
            PERFORM pg_advisory_unlock(-1518556285451084410);
        END IF;
    EXCEPTION WHEN query_canceled OR others THEN
        -- never leave a session lock: it would stop that writer for good
        PERFORM pg_advisory_unlock_shared(1886531897, l.objid::text::integer)
           FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
            AND l.classid = 1886531897 AND l.objsubid = 2 AND l.mode = 'ShareLock';
        PERFORM pg_advisory_unlock(-1518556285451084410)
           FROM pg_locks l
          WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
            AND l.mode = 'ExclusiveLock' AND l.objsubid = 1
            AND l.classid = ((-1518556285451084410::bigint >> 32) & 4294967295)::oid
            AND l.objid = (-1518556285451084410::bigint & 4294967295)::oid;
        RAISE;
    END;
    -- (4) the caller reads positions <= hi in a new statement
    RETURN hi;
END $$;

SELECT postroom_grants('FUNCTION postroom_event_position()', '');
SELECT postroom_grants('FUNCTION postroom_events_head()', 'app=EXECUTE; admin=EXECUTE; webhook=EXECUTE');
