-- bench/events-nolookup.sql - issue 19's outbox without the per-event
-- lookups, for bench/events-bench's BENCH_SQL (with BENCH_ALT_ROUNDS):
--
--   BENCH_ALT_ROUNDS=5 BENCH_NO_FOLLOW=1 BENCH_SQL=bench/events-nolookup.sql bench/events-bench
--
-- The hook writes each event row as 022 does, with the position lock
-- (028) and both statement triggers on events (018's NOTIFY, 021's
-- webhook enqueue), but without the addresses (email_recipients) and
-- class (email_reports, email_report_links) lookups: what those cost.
-- A measurement only, never a migration (events lose their addresses).

CREATE OR REPLACE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_kind IS NULL OR p_user IS NULL OR p_emails IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO events (kind, user_id, email_id)
    SELECT p_kind, p_user, x.e
      FROM (SELECT DISTINCT u.e FROM unnest(p_emails) AS u(e) WHERE u.e IS NOT NULL) x
     ORDER BY x.e;
END $$;
