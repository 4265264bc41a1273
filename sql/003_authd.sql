-- 003_authd.sql - what postroom-authd needs from the schema.
--
-- 1. authd writes api_keys.last_used_at in batches. The notify trigger of
--    001 fires on every UPDATE of api_keys, so each batch would purge the
--    very cache entries just used. Fire it only when a column that decides
--    authentication changes: owner, prefix, hash, scopes, expiry,
--    revocation (and on DELETE, as before).
-- 2. TRUNCATE fires no row trigger: tell authd to flush its whole cache.
DROP TRIGGER api_keys_notify ON api_keys;
CREATE TRIGGER api_keys_notify
    AFTER UPDATE OF user_id, prefix, key_hash, scopes, expires_at, revoked_at OR DELETE
    ON api_keys FOR EACH ROW EXECUTE FUNCTION postroom_notify_keys();

CREATE FUNCTION postroom_notify_keys_all() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postroom_keys', 'all');
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_truncate_notify AFTER TRUNCATE ON api_keys
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_notify_keys_all();
CREATE TRIGGER users_truncate_notify AFTER TRUNCATE ON users
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_notify_keys_all();
