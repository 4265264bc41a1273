-- 006_address_notify.sql - tell the daemons when the addresses users own
-- change: a user created or removed (its primary address row comes and goes
-- with it), an alias added or removed. postroom-milter and postroom-policyd
-- cache recipient lookups, "unknown" included; without this a user created
-- at run time would be refused (550 5.1.1, a bounce) until the cache entry
-- expired.
CREATE FUNCTION postroom_notify_addresses() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postroom_addresses', TG_OP);
    RETURN NULL;
END $$;
CREATE TRIGGER user_addresses_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON user_addresses
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_notify_addresses();
