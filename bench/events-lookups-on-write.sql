-- bench/events-lookups-on-write.sql - the outbox's hook as migrations
-- 022-030 had it, for bench/events-bench's BENCH_SQL: the 'before' of
-- migration 031, which looks a new or link event's addresses and class up
-- when the event is read instead of in the storing transaction:
--
--   BENCH_ALT_ROUNDS=15 BENCH_SYNTHETIC=60000 BENCH_NO_FOLLOW=1 \
--       BENCH_SQL=bench/events-lookups-on-write.sql bench/events-bench
--
-- The rows it writes carry their addresses and data, which 031's readers
-- return as written. A measurement only, never a migration.

CREATE OR REPLACE FUNCTION postroom_mailbox_changed(p_kind text, p_user uuid, p_emails uuid[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF p_kind IS NULL OR p_user IS NULL OR p_emails IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO events (kind, user_id, email_id, addresses, data)
    SELECT p_kind, p_user, x.e,
           CASE WHEN p_kind IN ('new', 'link') THEN
               (SELECT array_agg(DISTINCT lower(r.address) ORDER BY lower(r.address))
                  FROM email_recipients r
                 WHERE r.email_id = x.e AND r.user_id = p_user AND r.delivered)
           END,
           CASE WHEN p_kind IN ('new', 'link') THEN
               jsonb_strip_nulls(jsonb_build_object(
                   'class', COALESCE((SELECT rep.class FROM email_reports rep
                                       WHERE rep.email_id = x.e), 'ordinary'),
                   'sent_email_id', (SELECT l.sent_email_id FROM email_report_links l
                                      WHERE l.report_email_id = x.e
                                      ORDER BY l.created_at LIMIT 1)))
           END
      FROM (SELECT DISTINCT u.e FROM unnest(p_emails) AS u(e) WHERE u.e IS NOT NULL) x
     ORDER BY x.e;
END $$;
