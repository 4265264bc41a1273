-- 032_storage_quota_state.sql - the RCPT-time storage quota check asks
-- the database only for users that have a limit (issue 23: the milter
-- against its floor)
--
-- postroom-milter and postroom-policyd asked postroom_storage_quota_full
-- (016) at every RCPT to a hosted user, and could not tell "no limit"
-- from "under the limit": one round trip a recipient, 22 % of the
-- milter's rate (doc/BENCHMARKS.md, "Stop 30"), for every user even
-- where no quota is configured. postroom_storage_quota_state says which
-- addresses have a limit at all; an address without one is cached by
-- lib/rules_pg.c like its recipient lookups (milter.cache_ttl /
-- policyd.cache_ttl), and every change that can give it one notifies
-- postroom_addresses, which empties those caches:
--   storage_quota_limits  a user's own limit set, changed or removed;
--   domains               a domain's default (storage_quota_bytes);
--   user_addresses        already notifies (006): an address moved to
--                         another user.
-- The usage of a user with a limit is still read at every RCPT, never
-- cached (it changes with every delivery).
--
-- Builds of version 29-31 keep calling postroom_storage_quota_full,
-- whose answers are unchanged (it now reads postroom_storage_quota_state).
-- postroom: compatible_from 29

-- postroom_storage_quota_state - of p_addresses, one row for each whose
-- user has a limit (own or the domain's): the limit, the usage and
-- is_full (usage >= quota, or usage + p_size > quota when
-- p_size > 0). No row: no limit applies to any of them (or none is a
-- user's address).
CREATE FUNCTION postroom_storage_quota_state(p_addresses text[], p_size bigint DEFAULT 0)
RETURNS TABLE (address text, quota bigint, usage bigint, is_full boolean)
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
        address := a;
        quota := lim;
        usage := use;
        is_full := use >= lim OR (COALESCE(p_size, 0) > 0 AND use + p_size > lim);
        RETURN NEXT;
    END LOOP;
END $$;

-- postroom_storage_quota_full - 016's contract (those at or over the
-- limit, or crossed by p_size), now read from the state above: the rule
-- is written once
CREATE OR REPLACE FUNCTION postroom_storage_quota_full(p_addresses text[], p_size bigint DEFAULT 0)
RETURNS TABLE (address text, usage bigint, quota bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
    SELECT s.address, s.usage, s.quota
      FROM postroom_storage_quota_state(p_addresses, p_size) s
     WHERE s.is_full;
$$;

-- a limit given or taken: the daemons' cached "no limit" answers go
CREATE TRIGGER storage_quota_limits_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON storage_quota_limits
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_notify_addresses();
CREATE TRIGGER domains_storage_quota_notify
    AFTER UPDATE OF storage_quota_bytes ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_notify_addresses();

SELECT postroom_grants('FUNCTION postroom_storage_quota_state(text[],bigint)',
    'rules=EXECUTE; admin=EXECUTE');
