-- 017_retention.sql - retention periods and the purge (issue 18, item 3).
--
-- A retention period in days per domain and per user (NULL: none; the
-- user's overrides the domain's, the domain being that of the user's
-- primary address, users.address), counted from the time the email was
-- stored (mailbox_entries.stored_at). The trash has its own period, the
-- parameter mailbox.trash_retention_days that postroomctl passes in.
--
-- postroom_purge_batch(p_trash_days, p_limit, p_dry_run) does one bounded
-- batch in the caller's (short) transaction; `postroomctl mail purge` calls
-- it, one transaction each, until a batch finds nothing. A batch:
--   1. deletes up to p_limit memberships for good, through postroom_delete
--      (015: tombstones, the events hook, the expunge of every email that
--      lost its last reason to live): those trashed longer than the trash
--      period, and those past their user's retention that are not flagged
--      and not in the trash. Flagged mail is exempt from retention (not
--      from the trash period: a flagged email the user moved to the trash
--      goes with the trash). A user under legal hold, or whose domain is,
--      loses nothing.
--   2. expunges up to p_limit emails that have no reason to live left
--      (015's postroom_email_alive: no membership, no delivered row
--      waiting for its first owner, no row kept until a time still to
--      come, no delivered row of a domain under legal hold) among those
--      that had an owner removed: the mail of users removed with
--      --keep-mail DAYS once those days are over, and the mail of users
--      removed before 015.
--   3. removes up to p_limit tombstones older than 30 days.
-- It returns what it did: emails expunged, their bytes (emails.size_bytes),
-- memberships deleted, tombstones removed. Each batch commits on its own:
-- a purge that is killed loses at most its current batch (rolled back) and
-- the next run carries on from what is left.
--
-- With p_dry_run it changes nothing and counts, in one read-only
-- statement and without a limit, what a purge would do now: memberships,
-- and the emails (and bytes) that would die with them or are dead already.
--
-- Indexes: the trash is found through a partial index on deleted_at; the
-- retention of each user with a period through 015's (user_id, stored_at)
-- index; dead emails through a partial index on the recipient rows that
-- are orphaned or kept until a time; old tombstones through 015's index
-- on destroyed_at.

ALTER TABLE domains ADD COLUMN retention_days integer CHECK (retention_days > 0);
ALTER TABLE users ADD COLUMN retention_days integer CHECK (retention_days > 0);

CREATE INDEX mailbox_entries_trash_idx ON mailbox_entries (deleted_at)
    WHERE deleted_at IS NOT NULL;
CREATE INDEX email_recipients_orphaned_idx ON email_recipients (email_id)
    WHERE orphaned_at IS NOT NULL OR keep_until IS NOT NULL;

-- postroom_retention_days - the retention period of a user: their own,
-- else their domain's, else NULL
CREATE FUNCTION postroom_retention_days(p_user uuid) RETURNS integer
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE(u.retention_days, d.retention_days)
      FROM users u
      LEFT JOIN domains d ON d.name = lower(split_part(u.address, '@', 2))
     WHERE u.id = p_user
$$;

-- postroom_purge_members - up to p_limit memberships due: (user, email)
CREATE FUNCTION postroom_purge_members(p_trash_days integer, p_limit bigint)
RETURNS TABLE (user_id uuid, email_id uuid)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    WITH users_on AS (
        SELECT u.id, COALESCE(u.retention_days, d.retention_days) AS days
          FROM users u
          LEFT JOIN domains d ON d.name = lower(split_part(u.address, '@', 2))
         WHERE NOT u.legal_hold AND NOT COALESCE(d.legal_hold, false)
    ), trash AS (
        SELECT m.user_id, m.email_id
          FROM mailbox_entries m
         WHERE m.deleted_at IS NOT NULL
           AND m.deleted_at < now() - make_interval(days => p_trash_days)
           AND m.user_id IN (SELECT id FROM users_on)
         LIMIT p_limit
    ), old AS (
        SELECT x.user_id, x.email_id
          FROM users_on u
         CROSS JOIN LATERAL (
               SELECT m.user_id, m.email_id FROM mailbox_entries m
                WHERE m.user_id = u.id
                  AND m.stored_at < now() - make_interval(days => u.days)
                  AND NOT m.is_flagged AND m.deleted_at IS NULL
                LIMIT p_limit) x
         WHERE u.days IS NOT NULL
    )
    SELECT * FROM (SELECT * FROM trash UNION ALL SELECT * FROM old) a LIMIT p_limit
$$;

-- postroom_purge_alive - the email would still have a reason to live
-- without the memberships of the users p_going: 015's rule
-- (postroom_email_alive) with those memberships left out
CREATE FUNCTION postroom_purge_alive(p_email uuid, p_going uuid[]) RETURNS boolean
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT EXISTS (SELECT 1 FROM mailbox_entries m
                    WHERE m.email_id = p_email AND NOT (m.user_id = ANY (p_going)))
        OR EXISTS (SELECT 1 FROM email_recipients r
                    WHERE r.email_id = p_email
                      AND ((r.delivered AND r.user_id IS NULL AND r.orphaned_at IS NULL)
                           OR r.keep_until > now()
                           OR (r.delivered AND EXISTS (
                                   SELECT 1 FROM domains d
                                    WHERE lower(d.name) = lower(regexp_replace(r.address, '^.*@', ''))
                                      AND d.legal_hold))))
$$;

-- postroom_purge_dead - up to p_limit emails with no reason to live left
-- (postroom_email_alive), among those that had an owner removed: a row
-- orphaned, or kept until a time (now maybe past)
CREATE FUNCTION postroom_purge_dead(p_limit bigint) RETURNS TABLE (email_id uuid)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT o.email_id
      FROM (SELECT DISTINCT r.email_id FROM email_recipients r
             WHERE (r.orphaned_at IS NOT NULL OR r.keep_until IS NOT NULL)
               -- a row kept until later keeps its email: not even asked
               AND (r.keep_until IS NULL OR r.keep_until <= now())) o
     WHERE NOT postroom_email_alive(o.email_id)
     LIMIT p_limit
$$;

-- postroom_purge_count - what a purge would do now (the dry run): one
-- statement, one snapshot
CREATE FUNCTION postroom_purge_count(p_trash_days integer,
    OUT emails bigint, OUT bytes bigint, OUT memberships bigint, OUT tombstones bigint)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    WITH going AS MATERIALIZED (
        SELECT * FROM postroom_purge_members(p_trash_days, NULL)
    ), by_user AS (
        SELECT g.email_id, array_agg(g.user_id) AS users FROM going g GROUP BY g.email_id
    ), dying AS (
        SELECT b.email_id FROM by_user b WHERE NOT postroom_purge_alive(b.email_id, b.users)
        UNION
        SELECT d.email_id FROM postroom_purge_dead(NULL) d
    )
    SELECT (SELECT count(*) FROM emails e WHERE e.id IN (SELECT email_id FROM dying)),
           (SELECT COALESCE(sum(e.size_bytes), 0)::bigint FROM emails e
             WHERE e.id IN (SELECT email_id FROM dying)),
           (SELECT count(*) FROM going),
           (SELECT count(*) FROM mailbox_tombstones t
             WHERE t.destroyed_at < now() - interval '30 days')
$$;

-- postroom_purge_size - how many of p_emails, and their bytes, exist
CREATE FUNCTION postroom_purge_size(p_emails uuid[], OUT n bigint, OUT bytes bigint)
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT count(*), COALESCE(sum(e.size_bytes), 0)::bigint FROM emails e WHERE e.id = ANY (p_emails)
$$;

-- postroom_purge_batch - one bounded batch of the purge (see above)
CREATE FUNCTION postroom_purge_batch(p_trash_days integer, p_limit integer,
    p_dry_run boolean DEFAULT false,
    OUT emails bigint, OUT bytes bigint, OUT memberships bigint, OUT tombstones bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    u   record;
    ids uuid[];
    s0  record;
    s1  record;
BEGIN
    IF p_trash_days IS NULL OR p_trash_days < 0 OR p_limit IS NULL OR p_limit < 1 THEN
        RAISE EXCEPTION 'postroom_purge_batch: trash days >= 0 and a limit >= 1'
            USING ERRCODE = '22023';
    END IF;
    IF p_dry_run THEN
        SELECT c.emails, c.bytes, c.memberships, c.tombstones
          INTO emails, bytes, memberships, tombstones
          FROM postroom_purge_count(p_trash_days) c;
        RETURN;
    END IF;
    emails := 0;
    bytes := 0;
    memberships := 0;
    -- 1. memberships due, user by user, through the delete path (which
    -- expunges what dies); emails and bytes: what is gone afterwards
    FOR u IN SELECT p.user_id, array_agg(p.email_id) AS emails
               FROM postroom_purge_members(p_trash_days, p_limit) p
              GROUP BY p.user_id ORDER BY p.user_id LOOP
        s0 := postroom_purge_size(u.emails);
        BEGIN
            memberships := memberships + postroom_delete(u.user_id, u.emails);
        EXCEPTION WHEN SQLSTATE 'PR001' THEN
            NULL;  -- put under legal hold meanwhile: it keeps its mail
        END;
        s1 := postroom_purge_size(u.emails);
        emails := emails + s0.n - s1.n;
        bytes := bytes + s0.bytes - s1.bytes;
    END LOOP;
    -- 2. emails with no reason to live left
    SELECT array_agg(d.email_id) INTO ids FROM postroom_purge_dead(p_limit) d;
    IF ids IS NOT NULL THEN
        s0 := postroom_purge_size(ids);
        PERFORM postroom_expunge(ids);
        s1 := postroom_purge_size(ids);
        emails := emails + s0.n - s1.n;
        bytes := bytes + s0.bytes - s1.bytes;
    END IF;
    -- 3. old tombstones
    WITH gone AS (
        DELETE FROM mailbox_tombstones t
         WHERE (t.user_id, t.email_id, t.modseq) IN (
               SELECT x.user_id, x.email_id, x.modseq FROM mailbox_tombstones x
                WHERE x.destroyed_at < now() - interval '30 days' LIMIT p_limit)
        RETURNING 1)
    SELECT count(*) INTO tombstones FROM gone;
END $$;

-- Grants: postroomctl (admin) runs the purge and reads the periods; the
-- application may read a user's period; the helpers are the owner's.
SELECT postroom_grants('FUNCTION postroom_purge_batch(integer,integer,boolean)', 'admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_retention_days(uuid)', 'admin=EXECUTE; app=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_purge_members(integer,bigint)', '');
SELECT postroom_grants('FUNCTION postroom_purge_alive(uuid,uuid[])', '');
SELECT postroom_grants('FUNCTION postroom_purge_dead(bigint)', '');
SELECT postroom_grants('FUNCTION postroom_purge_count(integer)', '');
SELECT postroom_grants('FUNCTION postroom_purge_size(uuid[])', '');
