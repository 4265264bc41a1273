-- bench/events-floor.sql - the floor of issue 19's rate target: an outbox
-- reduced to the event row itself, for bench/events-bench's BENCH_SQL.
--
--   BENCH_NO_FOLLOW=1 BENCH_SQL=bench/events-floor.sql bench/events-bench
--
-- B then writes one events row a (user, email), in the storing
-- transaction, as the issue requires, and nothing else: no position lock
-- (the column default is a bare nextval), no NOTIFY, no addresses or class
-- lookups (021's webhook enqueue trigger stays: during A-C no endpoint is
-- registered, so it inserts nothing). The rate of B against A and C is the most
-- any outbox written in the same transaction can give on this machine. It
-- breaks the resume rule (no lock) and D's webhook latency means nothing
-- with it (no NOTIFY wakes the worker): a measurement only, never a migration.

ALTER TABLE events ALTER COLUMN position SET DEFAULT nextval('events_position_seq');
DROP TRIGGER events_notify ON events;

CREATE OR REPLACE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO events (kind, user_id, email_id)
    SELECT p_kind, p_user, u.e FROM unnest(p_emails) AS u(e);
END $$;
