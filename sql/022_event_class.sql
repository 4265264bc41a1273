-- 022_event_class.sql - the class of an email in its 'new' and 'link'
-- events (issue 21 "No loops"): an application following events can skip
-- bounces, auto-replies and complaints without a second query.
--
-- events.data of a 'new' or 'link' event becomes
--   {"class": "ordinary"|"bounce-hard"|"bounce-soft"|"delay"|"auto-reply"|"complaint",
--    "sent_email_id": uuid}
-- class from email_reports (migration 019; 'ordinary' without a report),
-- sent_email_id (only when there is one) the sent email a report is
-- linked to (email_report_links). postroom-deliver stores the report
-- (postroom_report_store) before the recipients whose statement trigger
-- writes the 'new' event, so both are there when the event is written.

-- postroom_mailbox_changed - 018's, with data for 'new' and 'link'
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

SELECT postroom_grants('FUNCTION postroom_mailbox_changed(text,uuid,uuid[])', '');
