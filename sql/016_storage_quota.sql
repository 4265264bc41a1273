-- 016_storage_quota.sql - the storage quota per user (issue 18, item 4).
--
-- Separate from the sending quota of migration 005 (quota_limits,
-- quota_usage): these are the bytes a user holds, not what a user sends.
--
-- Usage is migration 015's: storage_usage (the folded base) plus the
-- insert-only storage_usage_delta rows that the mailbox_entries trigger
-- writes in every storing and deleting transaction;
-- postroom_storage_usage(user) adds them up (no scan of mailbox_entries,
-- no hot row).
--
-- Limit: storage_quota_limits.bytes for the user, else
-- domains.storage_quota_bytes of the domain of the user's primary address
-- (users.address), else none.
--
-- Enforcement: postroom_storage_quota_full() is asked by postroom-milter
-- and postroom-policyd at RCPT (lib/rules_pg.c), which answer
-- 452 4.2.2 Mailbox full for the addresses it returns. Nothing refuses
-- after the MTA accepted a message: a message accepted is stored even
-- when it takes its user over the limit (a soft limit).

CREATE TABLE storage_quota_limits (
    user_id     uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    bytes       bigint NOT NULL CHECK (bytes >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

ALTER TABLE domains ADD COLUMN storage_quota_bytes bigint
    CHECK (storage_quota_bytes >= 0);

-- postroom_storage_quota_limit - the limit of a user and where it comes
-- from: 'user' (storage_quota_limits), 'domain' (the primary address's
-- domain) or 'none' (bytes NULL)
CREATE FUNCTION postroom_storage_quota_limit(p_user uuid, OUT bytes bigint, OUT source text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT COALESCE(l.bytes, d.storage_quota_bytes),
           CASE WHEN l.bytes IS NOT NULL THEN 'user'
                WHEN d.storage_quota_bytes IS NOT NULL THEN 'domain' ELSE 'none' END
      FROM users u
      LEFT JOIN storage_quota_limits l ON l.user_id = u.id
      LEFT JOIN domains d ON lower(d.name) = lower(split_part(u.address, '@', 2))
     WHERE u.id = p_user
$$;

-- postroom_storage_quota_full - of p_addresses (any of a user's addresses,
-- case-insensitive; an alias counts for its user), those whose user is at
-- or over the limit, or would cross it with a message of p_size bytes
-- (p_size > 0: the SIZE= the client announced). One indexed lookup per
-- address; usage only for users that have a limit.
CREATE FUNCTION postroom_storage_quota_full(p_addresses text[], p_size bigint DEFAULT 0)
RETURNS TABLE (address text, usage bigint, quota bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    a   text;
    uid uuid;
    lim bigint;
    use bigint;
BEGIN
    FOREACH a IN ARRAY COALESCE(p_addresses, '{}'::text[]) LOOP
        uid := NULL;
        SELECT ua.user_id INTO uid FROM user_addresses ua WHERE lower(ua.address) = lower(a);
        CONTINUE WHEN uid IS NULL;
        SELECT l.bytes INTO lim FROM postroom_storage_quota_limit(uid) l;
        CONTINUE WHEN lim IS NULL;
        use := postroom_storage_usage(uid);
        IF use >= lim OR (COALESCE(p_size, 0) > 0 AND use + p_size > lim) THEN
            address := a;
            usage := use;
            quota := lim;
            RETURN NEXT;
        END IF;
    END LOOP;
END $$;

-- postroom_storage_recount - repair the recorded usage of one user (NULL:
-- every user) from mailbox_entries. One statement, so one snapshot: the
-- entries it counts and the base and deltas it compares them with are
-- seen at the same instant, and the difference is added as one more
-- delta row (never an overwrite), so a delivery or a fold running at the
-- same time is neither lost nor counted twice. Returns every user
-- checked: the usage recorded before and the bytes counted.
CREATE FUNCTION postroom_storage_recount(p_user uuid DEFAULT NULL)
RETURNS TABLE (user_id uuid, recorded bigint, counted bigint)
LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    WITH c AS (
        SELECT u.id AS uid,
               COALESCE((SELECT b.bytes FROM storage_usage b WHERE b.user_id = u.id), 0)
             + COALESCE((SELECT sum(d.bytes) FROM storage_usage_delta d WHERE d.user_id = u.id), 0)
                   AS recorded,
               COALESCE((SELECT sum(m.size_bytes) FROM mailbox_entries m WHERE m.user_id = u.id), 0)
                   AS counted
          FROM users u
         WHERE p_user IS NULL OR u.id = p_user
    ), fix AS (
        INSERT INTO storage_usage_delta (user_id, bytes)
        SELECT uid, counted - recorded FROM c WHERE counted <> recorded
    )
    SELECT uid, recorded::bigint, counted::bigint FROM c ORDER BY uid
$$;

-- Database roles (migration 012): the rules group (milter, policyd) runs
-- the check, postroomctl (admin) manages limits and repairs usage.
SELECT postroom_grants('TABLE storage_quota_limits', 'admin=SELECT, INSERT, UPDATE, DELETE');
SELECT postroom_grants('FUNCTION postroom_storage_quota_limit(uuid)', 'admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_storage_quota_full(text[],bigint)',
    'rules=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_storage_recount(uuid)', 'admin=EXECUTE');
