-- 015_mailbox.sql - the mailbox lifecycle core (issue 18): per-user state
-- of an email (a membership), the change counter (modseq), delete for
-- good and expunge, blob free, legal hold, storage usage, user removal.
--
-- A membership (mailbox_entries) is a user's view of one email, per
-- (user, email): delivered to any of the user's addresses (received) or
-- the user's sent copy (sent), or both. Memberships appear by trigger, so
-- that no storing path (deliver, lmtpd, late linking) can forget them:
-- a delivered recipient row with an owner, and emails.sent_by_user_id.
-- The application changes state only through the functions below
-- (SECURITY DEFINER, search_path pinned); it has no UPDATE or DELETE on
-- any mail table.
--
-- Lock order (deadlock freedom against the store, lib/store_mail.c and
-- lib/store_group.c): identity locks of the emails (the store's key of
-- content_sha256, ascending), then the per-user shared modseq locks, then
-- the attachment stripe locks (ascending, the store's keys), then rows.
-- The store takes identity, then stripes; it never waits for a
-- membership row of an email whose identity lock another holds.
--
-- The modseq protocol: every write of a membership or tombstone of user
-- U takes pg_advisory_xact_lock_shared(postroom_user_lock_key(U)) before
-- drawing nextval('mailbox_modseq_seq'); shared locks never block each
-- other. A reader (postroom_mailbox_changes) takes the same key
-- exclusively for the duration of its query: every writer that drew a
-- value for U has ended, and none can draw one, while its snapshot is
-- taken, so a value it does not see is greater than every value it
-- returns ("changes since N" never skips a change committed late).

ALTER TABLE users ADD COLUMN legal_hold boolean NOT NULL DEFAULT false;
ALTER TABLE domains ADD COLUMN legal_hold boolean NOT NULL DEFAULT false;
ALTER TABLE email_recipients ADD COLUMN keep_until timestamptz;

CREATE SEQUENCE mailbox_modseq_seq;

CREATE TABLE mailbox_entries (
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email_id    uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    received    boolean NOT NULL DEFAULT false,
    sent        boolean NOT NULL DEFAULT false,
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    stored_at   timestamptz NOT NULL,
    is_read     boolean NOT NULL DEFAULT false,
    read_at     timestamptz,
    is_flagged  boolean NOT NULL DEFAULT false,
    flagged_at  timestamptz,
    deleted_at  timestamptz,
    modseq      bigint NOT NULL,
    -- email_id first: the key serves the lookups by email (expunge, the
    -- cascade from emails) and by (user, emails); by user alone the
    -- (user_id, modseq) index serves. One index fewer to write per
    -- membership than a (user_id, email_id) key plus an (email_id) index.
    PRIMARY KEY (email_id, user_id)
);
CREATE INDEX mailbox_entries_modseq_idx ON mailbox_entries (user_id, modseq);
CREATE INDEX mailbox_entries_stored_idx ON mailbox_entries (user_id, stored_at DESC);

-- A membership deleted for good, so that "changes since N" reports it;
-- pruned after 30 days by the purge.
CREATE TABLE mailbox_tombstones (
    user_id       uuid NOT NULL,
    email_id      uuid NOT NULL,
    modseq        bigint NOT NULL,
    destroyed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, email_id, modseq)
);
CREATE INDEX mailbox_tombstones_modseq_idx ON mailbox_tombstones (user_id, modseq);
CREATE INDEX mailbox_tombstones_email_idx ON mailbox_tombstones (email_id);
CREATE INDEX mailbox_tombstones_destroyed_idx ON mailbox_tombstones (destroyed_at);

-- Storage usage per user without a hot row: a folded base and
-- insert-only deltas.
CREATE TABLE storage_usage (
    user_id  uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bytes    bigint NOT NULL DEFAULT 0
);
CREATE TABLE storage_usage_delta (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id  uuid NOT NULL,
    bytes    bigint NOT NULL
);
CREATE INDEX storage_usage_delta_user_idx ON storage_usage_delta (user_id);

-- Existing mail: a membership for every delivered linked recipient row
-- and every sender's copy; is_read carried (read on any of the user's
-- rows); modseq in the order the mail was stored.
INSERT INTO mailbox_entries (user_id, email_id, received, sent, size_bytes, stored_at,
                             is_read, modseq)
SELECT s.user_id, s.email_id, s.received, s.sent, e.size_bytes, e.received_at, s.is_read,
       nextval('mailbox_modseq_seq')
  FROM (SELECT user_id, email_id, bool_or(received) AS received, bool_or(sent) AS sent,
               bool_or(is_read) AS is_read
          FROM (SELECT r.user_id, r.email_id, true AS received, false AS sent, r.is_read
                  FROM email_recipients r WHERE r.delivered AND r.user_id IS NOT NULL
                UNION ALL
                SELECT e.sent_by_user_id, e.id, false, true, false
                  FROM emails e WHERE e.sent_by_user_id IS NOT NULL) u
         GROUP BY user_id, email_id) s
  JOIN emails e ON e.id = s.email_id
 ORDER BY e.received_at, e.id;

INSERT INTO storage_usage (user_id, bytes)
SELECT user_id, sum(size_bytes) FROM mailbox_entries GROUP BY user_id;

ALTER TABLE email_recipients DROP COLUMN is_read;

-- Lock keys. postroom_user_lock_key: the modseq lock of a user.
-- postroom_email_lock_key: the store's identity lock of a message
-- (store_lock_key: the first 8 bytes of the digest, big-endian, signed).
-- postroom_att_lock_key: the store's attachment stripe lock (store_att_key:
-- (that & (STORE_ATT_STRIPES - 1)) ^ STORE_ATT_KEY_XOR, 512 stripes,
-- 0x5a5a5a5a5a5a5a5a).
CREATE FUNCTION postroom_user_lock_key(p_user uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT hashtextextended('postroom-mbx:' || p_user::text, 0)
$$;
CREATE FUNCTION postroom_email_lock_key(p_digest bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ('x' || encode(substr(p_digest, 1, 8), 'hex'))::bit(64)::bigint
$$;
CREATE FUNCTION postroom_att_lock_key(p_digest bytea) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT ((get_byte(p_digest, 6) << 8 | get_byte(p_digest, 7)) & 511)::bigint
           # 6510615555426900570
$$;

-- postroom_mailbox_lock - the shared modseq locks of the users, in key
-- order (before drawing a modseq value for any of them)
CREATE FUNCTION postroom_mailbox_lock(p_users uuid[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(k)
       FROM (SELECT DISTINCT postroom_user_lock_key(u) AS k
               FROM unnest(p_users) AS x(u) WHERE u IS NOT NULL ORDER BY 1) s;
END $$;

-- postroom_mailbox_changed - the hook of the events issue: called once
-- per user and kind ('new', 'sent', 'link', 'read', 'unread', 'flagged',
-- 'unflagged', 'trash', 'restore', 'delete', 'expunge') with the emails
-- concerned, in the transaction that changed them. Here it does nothing;
-- the events migration replaces it (CREATE OR REPLACE, same signature).
CREATE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
END $$;

-- postroom_mailbox_notify - the hook for each user of (users[i], emails[i])
CREATE FUNCTION postroom_mailbox_notify(p_kind text, p_users uuid[], p_emails uuid[])
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM postroom_mailbox_changed(p_kind, s.u, s.es)
       FROM (SELECT u, array_agg(e ORDER BY e) AS es
               FROM unnest(p_users, p_emails) AS x(u, e) GROUP BY u ORDER BY u) s;
END $$;

-- postroom_mailbox_received - statement trigger on email_recipients:
-- every delivered row with an owner gets its owner's membership (one
-- INSERT for the whole statement; a sent-only membership becomes
-- received too). The storing path runs it once per message: two
-- statements (the shared modseq locks; the INSERT with the hook), plans
-- kept for the connection. enable_seqscan = off: those plans are made
-- once (lmtpd's connections force generic plans), maybe on a nearly
-- empty emails table, and must look an email up by its key however large
-- the table has grown since. jit = off with it: the setting holds for
-- every statement planned under this function (the hooks and the
-- triggers on events), and a seqscan that cannot be avoided (a small
-- table without a usable index) then costs over jit_above_cost, so each
-- execution would be JIT-compiled again (~130 ms a message, seen with
-- 021's trigger on events).
CREATE FUNCTION postroom_mailbox_received() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET enable_seqscan = off
    SET jit = off AS $$
DECLARE
    n integer;
    linked boolean;
BEGIN
    IF TG_OP = 'INSERT' THEN
        PERFORM pg_advisory_xact_lock_shared(k)
           FROM (SELECT DISTINCT postroom_user_lock_key(user_id) AS k FROM new_rows
                  WHERE delivered AND user_id IS NOT NULL ORDER BY 1) s;
        IF NOT FOUND THEN
            RETURN NULL;
        END IF;
        WITH ins AS (
            INSERT INTO mailbox_entries AS m (user_id, email_id, received, size_bytes, stored_at, modseq)
            SELECT p.user_id, p.email_id, true, e.size_bytes, e.received_at, nextval('mailbox_modseq_seq')
              FROM (SELECT DISTINCT user_id, email_id FROM new_rows
                     WHERE delivered AND user_id IS NOT NULL) p
              JOIN emails e ON e.id = p.email_id
                ON CONFLICT (user_id, email_id) DO UPDATE
               SET received = true, modseq = nextval('mailbox_modseq_seq')
             WHERE NOT m.received
            RETURNING m.user_id, m.email_id)
        SELECT count(*) INTO n FROM (
            SELECT postroom_mailbox_changed('new', user_id, array_agg(email_id ORDER BY email_id))
              FROM ins GROUP BY user_id) s;
    ELSE
        -- a row became delivered (redelivery) or got its owner (linking:
        -- every such row was delivered before)
        SELECT count(*), bool_and(o.delivered) INTO n, linked
          FROM new_rows nr JOIN old_rows o ON o.id = nr.id
         WHERE nr.delivered AND nr.user_id IS NOT NULL
           AND (NOT o.delivered OR o.user_id IS DISTINCT FROM nr.user_id);
        IF n = 0 THEN
            RETURN NULL;
        END IF;
        PERFORM pg_advisory_xact_lock_shared(k)
           FROM (SELECT DISTINCT postroom_user_lock_key(user_id) AS k FROM new_rows
                  WHERE delivered AND user_id IS NOT NULL ORDER BY 1) s;
        WITH ins AS (
            INSERT INTO mailbox_entries AS m (user_id, email_id, received, size_bytes, stored_at, modseq)
            SELECT p.user_id, p.email_id, true, e.size_bytes, e.received_at, nextval('mailbox_modseq_seq')
              FROM (SELECT DISTINCT nr.user_id, nr.email_id
                      FROM new_rows nr JOIN old_rows o ON o.id = nr.id
                     WHERE nr.delivered AND nr.user_id IS NOT NULL
                       AND (NOT o.delivered OR o.user_id IS DISTINCT FROM nr.user_id)) p
              JOIN emails e ON e.id = p.email_id
                ON CONFLICT (user_id, email_id) DO UPDATE
               SET received = true, modseq = nextval('mailbox_modseq_seq')
             WHERE NOT m.received
            RETURNING m.user_id, m.email_id)
        SELECT count(*) INTO n FROM (
            SELECT postroom_mailbox_changed(CASE WHEN linked THEN 'link' ELSE 'new' END,
                                            user_id, array_agg(email_id ORDER BY email_id))
              FROM ins GROUP BY user_id) s;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER email_recipients_mailbox_ins AFTER INSERT ON email_recipients
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_mailbox_received();
CREATE TRIGGER email_recipients_mailbox_upd AFTER UPDATE ON email_recipients
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_mailbox_received();

-- postroom_mailbox_sent - row trigger on emails: the sender's copy
CREATE FUNCTION postroom_mailbox_sent() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    u uuid;
BEGIN
    PERFORM pg_advisory_xact_lock_shared(postroom_user_lock_key(NEW.sent_by_user_id));
    INSERT INTO mailbox_entries AS m (user_id, email_id, sent, size_bytes, stored_at, modseq)
    VALUES (NEW.sent_by_user_id, NEW.id, true, NEW.size_bytes, NEW.received_at,
            nextval('mailbox_modseq_seq'))
        ON CONFLICT (user_id, email_id) DO UPDATE
       SET sent = true, modseq = nextval('mailbox_modseq_seq')
     WHERE NOT m.sent
    RETURNING m.user_id INTO u;
    IF u IS NOT NULL THEN
        PERFORM postroom_mailbox_changed('sent', u, ARRAY[NEW.id]);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER emails_mailbox_sent_ins AFTER INSERT ON emails
    FOR EACH ROW WHEN (NEW.sent_by_user_id IS NOT NULL)
    EXECUTE FUNCTION postroom_mailbox_sent();
CREATE TRIGGER emails_mailbox_sent_upd AFTER UPDATE OF sent_by_user_id ON emails
    FOR EACH ROW WHEN (NEW.sent_by_user_id IS NOT NULL
                       AND NEW.sent_by_user_id IS DISTINCT FROM OLD.sent_by_user_id)
    EXECUTE FUNCTION postroom_mailbox_sent();

-- postroom_storage_track - statement trigger on mailbox_entries: one
-- delta row per user and statement (+size on insert, -size on delete;
-- nothing for a user being removed)
CREATE FUNCTION postroom_storage_track() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public SET enable_seqscan = off
    SET jit = off AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO storage_usage_delta (user_id, bytes)
        SELECT user_id, sum(size_bytes) FROM new_rows GROUP BY user_id;
    ELSE
        INSERT INTO storage_usage_delta (user_id, bytes)
        SELECT o.user_id, -sum(o.size_bytes) FROM old_rows o
         WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = o.user_id)
         GROUP BY o.user_id;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER mailbox_entries_storage_ins AFTER INSERT ON mailbox_entries
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_storage_track();
CREATE TRIGGER mailbox_entries_storage_del AFTER DELETE ON mailbox_entries
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_storage_track();

-- postroom_storage_usage - the bytes of the messages the user holds
CREATE FUNCTION postroom_storage_usage(p_user uuid) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT COALESCE((SELECT bytes FROM storage_usage WHERE user_id = p_user), 0)
         + COALESCE((SELECT sum(bytes) FROM storage_usage_delta WHERE user_id = p_user), 0)::bigint
$$;

-- postroom_storage_fold - fold the deltas into the base, 10,000 at a
-- time (deltas of removed users are dropped); returns the deltas folded
CREATE FUNCTION postroom_storage_fold() RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n bigint;
    total bigint := 0;
BEGIN
    LOOP
        WITH d AS (
            DELETE FROM storage_usage_delta
             WHERE id IN (SELECT id FROM storage_usage_delta ORDER BY id LIMIT 10000
                          FOR UPDATE SKIP LOCKED)
            RETURNING user_id, bytes),
        s AS (SELECT user_id, sum(bytes)::bigint AS b, count(*) AS c FROM d GROUP BY user_id),
        up AS (
            INSERT INTO storage_usage AS su (user_id, bytes)
            SELECT s.user_id, s.b FROM s WHERE EXISTS (SELECT 1 FROM users u WHERE u.id = s.user_id)
             ORDER BY s.user_id
                ON CONFLICT (user_id) DO UPDATE SET bytes = su.bytes + EXCLUDED.bytes
            RETURNING 1)
        SELECT COALESCE(sum(c), 0) INTO n FROM s;
        EXIT WHEN n = 0;
        total := total + n;
    END LOOP;
    RETURN total;
END $$;

-- postroom_mailbox_user - the checks of every state function: a user is
-- named (22004), and, for delete, neither it nor its domain is under
-- legal hold (PR001)
CREATE FUNCTION postroom_mailbox_user(p_user uuid, p_for_delete boolean) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF p_user IS NULL THEN
        RAISE EXCEPTION 'postroom mailbox: the user is NULL' USING ERRCODE = '22004';
    END IF;
    IF p_for_delete AND EXISTS (
           SELECT 1 FROM users u
            WHERE u.id = p_user
              AND (u.legal_hold OR EXISTS (
                       SELECT 1 FROM domains d
                        WHERE lower(d.name) = lower(regexp_replace(u.address, '^.*@', ''))
                          AND d.legal_hold))) THEN
        RAISE EXCEPTION 'postroom mailbox: user % is under legal hold', p_user
              USING ERRCODE = 'PR001',
                    HINT = 'clear users.legal_hold or domains.legal_hold first';
    END IF;
END $$;

-- postroom_mark_read - read (or unread) for the user's memberships in
-- p_emails; returns how many changed
CREATE FUNCTION postroom_mark_read(p_user uuid, p_emails uuid[], p_read boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
    es uuid[];
BEGIN
    PERFORM postroom_mailbox_user(p_user, false);
    IF p_read IS NULL THEN
        RAISE EXCEPTION 'postroom_mark_read: p_read is NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM postroom_mailbox_lock(ARRAY[p_user]);
    WITH u AS (
        UPDATE mailbox_entries m
           SET is_read = p_read, read_at = CASE WHEN p_read THEN now() END,
               modseq = nextval('mailbox_modseq_seq')
         WHERE m.user_id = p_user AND m.email_id = ANY (p_emails) AND m.is_read <> p_read
        RETURNING m.email_id)
    SELECT count(*), array_agg(email_id) INTO n, es FROM u;
    IF n > 0 THEN
        PERFORM postroom_mailbox_changed(CASE WHEN p_read THEN 'read' ELSE 'unread' END,
                                         p_user, es);
    END IF;
    RETURN n;
END $$;

-- postroom_mark_flagged - flag (or unflag)
CREATE FUNCTION postroom_mark_flagged(p_user uuid, p_emails uuid[], p_flagged boolean DEFAULT true)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
    es uuid[];
BEGIN
    PERFORM postroom_mailbox_user(p_user, false);
    IF p_flagged IS NULL THEN
        RAISE EXCEPTION 'postroom_mark_flagged: p_flagged is NULL' USING ERRCODE = '22004';
    END IF;
    PERFORM postroom_mailbox_lock(ARRAY[p_user]);
    WITH u AS (
        UPDATE mailbox_entries m
           SET is_flagged = p_flagged, flagged_at = CASE WHEN p_flagged THEN now() END,
               modseq = nextval('mailbox_modseq_seq')
         WHERE m.user_id = p_user AND m.email_id = ANY (p_emails) AND m.is_flagged <> p_flagged
        RETURNING m.email_id)
    SELECT count(*), array_agg(email_id) INTO n, es FROM u;
    IF n > 0 THEN
        PERFORM postroom_mailbox_changed(CASE WHEN p_flagged THEN 'flagged' ELSE 'unflagged' END,
                                         p_user, es);
    END IF;
    RETURN n;
END $$;

-- postroom_trash - move to the trash (deleted_at = now())
CREATE FUNCTION postroom_trash(p_user uuid, p_emails uuid[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
    es uuid[];
BEGIN
    PERFORM postroom_mailbox_user(p_user, false);
    PERFORM postroom_mailbox_lock(ARRAY[p_user]);
    WITH u AS (
        UPDATE mailbox_entries m SET deleted_at = now(), modseq = nextval('mailbox_modseq_seq')
         WHERE m.user_id = p_user AND m.email_id = ANY (p_emails) AND m.deleted_at IS NULL
        RETURNING m.email_id)
    SELECT count(*), array_agg(email_id) INTO n, es FROM u;
    IF n > 0 THEN
        PERFORM postroom_mailbox_changed('trash', p_user, es);
    END IF;
    RETURN n;
END $$;

-- postroom_restore - out of the trash
CREATE FUNCTION postroom_restore(p_user uuid, p_emails uuid[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
    es uuid[];
BEGIN
    PERFORM postroom_mailbox_user(p_user, false);
    PERFORM postroom_mailbox_lock(ARRAY[p_user]);
    WITH u AS (
        UPDATE mailbox_entries m SET deleted_at = NULL, modseq = nextval('mailbox_modseq_seq')
         WHERE m.user_id = p_user AND m.email_id = ANY (p_emails) AND m.deleted_at IS NOT NULL
        RETURNING m.email_id)
    SELECT count(*), array_agg(email_id) INTO n, es FROM u;
    IF n > 0 THEN
        PERFORM postroom_mailbox_changed('restore', p_user, es);
    END IF;
    RETURN n;
END $$;

-- postroom_email_alive - does the email have a reason to live: a
-- membership; a delivered row waiting for its first owner; a row kept
-- until a later time (a removed user's audit period); a delivered row of
-- a domain under legal hold
CREATE FUNCTION postroom_email_alive(p_email uuid) RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT EXISTS (SELECT 1 FROM mailbox_entries m WHERE m.email_id = p_email)
        OR EXISTS (SELECT 1 FROM email_recipients r
                    WHERE r.email_id = p_email
                      AND ((r.delivered AND r.user_id IS NULL AND r.orphaned_at IS NULL)
                           OR r.keep_until > now()
                           OR (r.delivered AND EXISTS (
                                   SELECT 1 FROM domains d
                                    WHERE lower(d.name) = lower(regexp_replace(r.address, '^.*@', ''))
                                      AND d.legal_hold))))
$$;

-- postroom_blobs_free - delete each blob of p_digests that no attachment
-- references any more, under the store's stripe locks (ascending);
-- returns how many were freed
CREATE FUNCTION postroom_blobs_free(p_digests bytea[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT postroom_att_lock_key(d) AS k
               FROM unnest(p_digests) AS x(d) WHERE d IS NOT NULL ORDER BY 1) s;
    WITH del AS (
        DELETE FROM blobs b
         WHERE b.sha256 = ANY (p_digests)
           AND NOT EXISTS (SELECT 1 FROM email_attachments a WHERE a.sha256 = b.sha256)
        RETURNING 1)
    SELECT count(*) INTO n FROM del;
    RETURN n;
END $$;

-- postroom_expunge - delete every email of p_emails that has no reason
-- to live (postroom_email_alive): the email row with its raw message,
-- recipient rows, attachment rows and memberships (cascade), then the
-- blobs nobody references. Locks: identity locks, attachment stripes
-- (both ascending, as the store), then the email rows; the liveness is
-- checked again under them. Returns the emails and bytes removed.
CREATE FUNCTION postroom_expunge(p_emails uuid[])
RETURNS TABLE (emails integer, bytes bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    cand uuid[];
    digests bytea[];
    gone uuid[];
    n integer;
    b bigint;
    hu uuid[];
    he uuid[];
BEGIN
    SELECT array_agg(e.id ORDER BY e.id) INTO cand
      FROM emails e WHERE e.id = ANY (p_emails) AND NOT postroom_email_alive(e.id);
    IF cand IS NULL THEN
        RETURN QUERY SELECT 0, 0::bigint;
        RETURN;
    END IF;
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT postroom_email_lock_key(e.content_sha256) AS k
               FROM emails e WHERE e.id = ANY (cand) ORDER BY 1) s;
    SELECT array_agg(DISTINCT a.sha256) INTO digests
      FROM email_attachments a WHERE a.email_id = ANY (cand);
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT postroom_att_lock_key(d) AS k
               FROM unnest(digests) AS x(d) ORDER BY 1) s;
    PERFORM 1 FROM emails e WHERE e.id = ANY (cand) ORDER BY e.id FOR UPDATE;
    -- a new statement: a snapshot taken under the locks
    WITH del AS (
        DELETE FROM emails e WHERE e.id = ANY (cand) AND NOT postroom_email_alive(e.id)
        RETURNING e.id, e.size_bytes)
    SELECT count(*), COALESCE(sum(size_bytes), 0), array_agg(id) INTO n, b, gone FROM del;
    IF n > 0 THEN
        IF digests IS NOT NULL THEN
            PERFORM postroom_blobs_free(digests);
        END IF;
        SELECT array_agg(t.user_id), array_agg(t.email_id) INTO hu, he
          FROM (SELECT DISTINCT user_id, email_id FROM mailbox_tombstones
                 WHERE email_id = ANY (gone)) t;
        IF hu IS NOT NULL THEN
            PERFORM postroom_mailbox_notify('expunge', hu, he);
        END IF;
    END IF;
    RETURN QUERY SELECT n, b;
END $$;

-- postroom_delete - delete for good: the user's memberships in p_emails
-- end (tombstones written), then every email of them with no reason to
-- live left is expunged, in the same transaction. Refused (PR001) under
-- legal hold. Returns the memberships deleted.
CREATE FUNCTION postroom_delete(p_user uuid, p_emails uuid[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
    es uuid[];
BEGIN
    PERFORM postroom_mailbox_user(p_user, true);
    -- the identity locks first (the store's order): a redelivery of one
    -- of them waits, then finds the email stored or gone
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT postroom_email_lock_key(e.content_sha256) AS k
               FROM mailbox_entries m JOIN emails e ON e.id = m.email_id
              WHERE m.user_id = p_user AND m.email_id = ANY (p_emails) ORDER BY 1) s;
    PERFORM postroom_mailbox_lock(ARRAY[p_user]);
    WITH d AS (
        DELETE FROM mailbox_entries m
         WHERE m.user_id = p_user AND m.email_id = ANY (p_emails)
        RETURNING m.email_id),
    t AS (
        INSERT INTO mailbox_tombstones (user_id, email_id, modseq)
        SELECT p_user, d.email_id, nextval('mailbox_modseq_seq') FROM d
        RETURNING email_id)
    SELECT count(*), array_agg(email_id) INTO n, es FROM t;
    IF n > 0 THEN
        PERFORM postroom_mailbox_changed('delete', p_user, es);
        PERFORM postroom_expunge(es);
    END IF;
    RETURN n;
END $$;

-- postroom_empty_trash - delete for good every trashed membership
CREATE FUNCTION postroom_empty_trash(p_user uuid) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
BEGIN
    PERFORM postroom_mailbox_user(p_user, true);
    RETURN postroom_delete(p_user, ARRAY(
        SELECT email_id FROM mailbox_entries
         WHERE user_id = p_user AND deleted_at IS NOT NULL));
END $$;

-- postroom_mailbox_changes - the user's memberships and tombstones with
-- modseq > p_since, in modseq order. Holds the user's modseq lock
-- exclusively while it reads (see the protocol above); READ COMMITTED
-- only (PR002), so that the read has its own snapshot.
CREATE FUNCTION postroom_mailbox_changes(p_user uuid, p_since bigint)
RETURNS TABLE (email_id uuid, modseq bigint, destroyed boolean, is_read boolean,
               is_flagged boolean, deleted_at timestamptz, received boolean, sent boolean,
               size_bytes bigint, stored_at timestamptz, read_at timestamptz,
               flagged_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    k bigint;
BEGIN
    IF p_user IS NULL THEN
        RAISE EXCEPTION 'postroom_mailbox_changes: the user is NULL' USING ERRCODE = '22004';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'postroom_mailbox_changes needs READ COMMITTED, not %',
              upper(current_setting('transaction_isolation')) USING ERRCODE = 'PR002';
    END IF;
    k := postroom_user_lock_key(p_user);
    PERFORM pg_advisory_lock(k);
    BEGIN
        RETURN QUERY
        SELECT m.email_id, m.modseq, false, m.is_read, m.is_flagged, m.deleted_at, m.received,
               m.sent, m.size_bytes, m.stored_at, m.read_at, m.flagged_at
          FROM mailbox_entries m WHERE m.user_id = p_user AND m.modseq > COALESCE(p_since, 0)
        UNION ALL
        SELECT t.email_id, t.modseq, true, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL
          FROM mailbox_tombstones t WHERE t.user_id = p_user AND t.modseq > COALESCE(p_since, 0)
        ORDER BY 2;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(k);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(k);
END $$;

-- postroom_mailbox_modseq - the user's highest modseq (0: none), read
-- like postroom_mailbox_changes
CREATE FUNCTION postroom_mailbox_modseq(p_user uuid) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    k bigint;
    v bigint;
BEGIN
    IF p_user IS NULL THEN
        RAISE EXCEPTION 'postroom_mailbox_modseq: the user is NULL' USING ERRCODE = '22004';
    END IF;
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'postroom_mailbox_modseq needs READ COMMITTED, not %',
              upper(current_setting('transaction_isolation')) USING ERRCODE = 'PR002';
    END IF;
    k := postroom_user_lock_key(p_user);
    PERFORM pg_advisory_lock(k);
    BEGIN
        SELECT GREATEST(COALESCE((SELECT max(modseq) FROM mailbox_entries WHERE user_id = p_user), 0),
                        COALESCE((SELECT max(modseq) FROM mailbox_tombstones WHERE user_id = p_user), 0))
          INTO v;
    EXCEPTION WHEN OTHERS THEN
        PERFORM pg_advisory_unlock(k);
        RAISE;
    END;
    PERFORM pg_advisory_unlock(k);
    RETURN v;
END $$;

-- postroom_user_remove - remove a user and its mailbox. Refused (PR001)
-- under legal hold. p_keep_days NULL: every membership is deleted for
-- good (what dies is expunged), then the user. Else the user's mail is
-- kept, unlinked and unreachable, for p_keep_days: keep_until on the
-- user's recipient rows (and on every row of an email the user holds
-- only as its sender), then the user is deleted (its rows are orphaned,
-- sql/013); the purge expunges the mail after keep_until. The mail never
-- passes to a later owner of the address. Returns the memberships the
-- user had.
CREATE FUNCTION postroom_user_remove(p_user uuid, p_keep_days integer DEFAULT NULL)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
BEGIN
    PERFORM postroom_mailbox_user(p_user, true);
    IF p_keep_days < 0 THEN
        RAISE EXCEPTION 'postroom_user_remove: keep_days % is negative', p_keep_days
              USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM users WHERE id = p_user FOR UPDATE;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    IF p_keep_days IS NULL THEN
        n := postroom_delete(p_user, ARRAY(SELECT email_id FROM mailbox_entries
                                            WHERE user_id = p_user));
    ELSE
        SELECT count(*) INTO n FROM mailbox_entries WHERE user_id = p_user;
        UPDATE email_recipients r
           SET keep_until = GREATEST(r.keep_until, now() + make_interval(days => p_keep_days))
         WHERE r.user_id = p_user
            OR r.email_id IN (SELECT m.email_id FROM mailbox_entries m
                               WHERE m.user_id = p_user AND NOT m.received);
    END IF;
    DELETE FROM users WHERE id = p_user;
    RETURN n;
END $$;

-- A user under legal hold cannot be deleted, whatever the path.
CREATE FUNCTION postroom_user_hold_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'user % is under legal hold', OLD.address USING ERRCODE = 'PR001';
END $$;
CREATE TRIGGER users_legal_hold BEFORE DELETE ON users
    FOR EACH ROW WHEN (OLD.legal_hold) EXECUTE FUNCTION postroom_user_hold_check();

-- postroom_thread_merged - the hook of the events issue for a merge:
-- p_merged are the threads that took thread p_winner's id when email
-- p_email was stored. Here it does nothing; the events migration replaces
-- it (CREATE OR REPLACE, same signature).
CREATE FUNCTION postroom_thread_merged(p_email uuid, p_winner uuid, p_merged uuid[])
RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
BEGIN
END $$;

-- Threads: the winner of a merge is the thread id of the thread whose
-- oldest remaining member is the oldest (not that member's own id), so a
-- thread keeps its id after its first email is expunged. A thread id is
-- the id of the email that started the thread; it may name an email
-- that has been expunged; it is stable except when the thread is merged
-- into an older one. Otherwise as sql/014.
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

-- Grants (sql/012). The application reads the state and changes it only
-- through the functions; triggers and SECURITY DEFINER functions need
-- nothing of the callers.
SELECT postroom_grants('TABLE email_recipients',
    'deliver=SELECT, INSERT, UPDATE (delivered, user_id); app=SELECT; admin=SELECT, UPDATE (user_id)');
SELECT postroom_grants('TABLE mailbox_entries', 'app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE mailbox_tombstones', 'app=SELECT; admin=SELECT');
SELECT postroom_grants('SEQUENCE mailbox_modseq_seq', '');
SELECT postroom_grants('TABLE storage_usage', 'app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE storage_usage_delta', 'admin=SELECT');
SELECT postroom_grants('SEQUENCE storage_usage_delta_id_seq', '');

SELECT postroom_grants('FUNCTION postroom_user_lock_key(uuid)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_email_lock_key(bytea)', '');
SELECT postroom_grants('FUNCTION postroom_att_lock_key(bytea)', '');
SELECT postroom_grants('FUNCTION postroom_mailbox_lock(uuid[])', '');
SELECT postroom_grants('FUNCTION postroom_mailbox_changed(text,uuid,uuid[])', '');
SELECT postroom_grants('FUNCTION postroom_thread_merged(uuid,uuid,uuid[])', 'deliver=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_mailbox_notify(text,uuid[],uuid[])', '');
SELECT postroom_grants('FUNCTION postroom_mailbox_received()', '');
SELECT postroom_grants('FUNCTION postroom_mailbox_sent()', '');
SELECT postroom_grants('FUNCTION postroom_storage_track()', '');
SELECT postroom_grants('FUNCTION postroom_user_hold_check()', '');
SELECT postroom_grants('FUNCTION postroom_mailbox_user(uuid,boolean)', '');
SELECT postroom_grants('FUNCTION postroom_email_alive(uuid)', '');
SELECT postroom_grants('FUNCTION postroom_storage_usage(uuid)',
    'rules=EXECUTE; app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_storage_fold()', 'admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_mark_read(uuid,uuid[],boolean)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_mark_flagged(uuid,uuid[],boolean)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_trash(uuid,uuid[])', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_restore(uuid,uuid[])', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_delete(uuid,uuid[])', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_empty_trash(uuid)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_mailbox_changes(uuid,bigint)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_mailbox_modseq(uuid)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_blobs_free(bytea[])', 'admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_expunge(uuid[])', 'admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_user_remove(uuid,integer)', 'admin=EXECUTE');
