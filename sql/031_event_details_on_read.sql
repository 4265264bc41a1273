-- 031_event_details_on_read.sql - a 'new' or 'link' event's addresses
-- and class are looked up when the event is read, not written into its
-- row (issue 19 number 1: the LMTP storing rate with the outbox).
--
-- Until now postroom_mailbox_changed (018, 022) looked up, for each
-- 'new' and 'link' event it wrote, the user's delivered addresses
-- (email_recipients), the email's class (email_reports) and the sent
-- email a report is linked to (email_report_links): three probes in the
-- storing transaction for every user of every message, about a third of
-- what an event costs there (doc/BENCHMARKS.md, "Stop 30"). Those are
-- facts about the stored email, not about the event, and every reader
-- already joins the email for its thread (and the webhook for its
-- subject, sender and verdict). Now the hook writes only kind, user and
-- email, and the two readers - postroom_events_read (postroomctl events,
-- applications) and postroom_webhook_claim (postroom-webhookd) - take the
-- addresses and data from postroom_event_details, written once here.
--
-- What a reader sees:
--   addresses  the user's addresses the email was delivered to, lower
--              case, as before. They are the delivered recipients when
--              the event is read: an address of the same user linked to
--              the email later is listed too (it makes no second event).
--              NULL once the email was expunged (an 'expunge' or
--              'delete' event follows the 'new' one).
--   data       {"class": C} or {"class": C, "sent_email_id": S}, as 022
--              defined it. NULL once the email was expunged (never a
--              wrong 'ordinary').
-- Rows written before this migration keep their written values; the
-- readers return those (COALESCE). The events table itself is read by
-- no application role (018: app reads through the function only), so its
-- columns are internal; doc/schema.md says which readers fill them.
--
-- Builds of version 29 and 30 call neither function differently
-- (postroom-webhookd's claim keeps its signature and columns).
-- postroom: compatible_from 29

-- postroom_event_details - the addresses and data a 'new' or 'link'
-- event of user p_user for email p_email carries when read; other kinds
-- and rows that carry their own values get those (p_addresses, p_data)
CREATE FUNCTION postroom_event_details(p_kind text, p_user uuid, p_email uuid,
                                       p_addresses text[], p_data jsonb,
                                       OUT addresses text[], OUT data jsonb)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    addresses := p_addresses;
    data := p_data;
    IF p_kind NOT IN ('new', 'link') OR p_email IS NULL
       OR (p_addresses IS NOT NULL AND p_data IS NOT NULL) THEN
        RETURN;
    END IF;
    IF addresses IS NULL THEN
        SELECT array_agg(DISTINCT lower(r.address) ORDER BY lower(r.address))
          INTO addresses
          FROM email_recipients r
         WHERE r.email_id = p_email AND r.user_id = p_user AND r.delivered;
    END IF;
    IF data IS NULL THEN
        SELECT jsonb_strip_nulls(jsonb_build_object(
                   'class', COALESCE(rep.class, 'ordinary'),
                   'sent_email_id', (SELECT l.sent_email_id FROM email_report_links l
                                      WHERE l.report_email_id = e.id
                                      ORDER BY l.created_at LIMIT 1)))
          INTO data
          FROM emails e
          LEFT JOIN email_reports rep ON rep.email_id = e.id
         WHERE e.id = p_email;
    END IF;
END $$;

-- postroom_mailbox_changed - 022's, without the lookups: one event per
-- email for the user, in the transaction of the change
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

-- postroom_events_read - 018's, with the details of postroom_event_details
-- (same signature, same resume rule, same errors)
CREATE OR REPLACE FUNCTION postroom_events_read(p_since bigint, p_limit integer DEFAULT 1000,
                                                p_user uuid DEFAULT NULL)
RETURNS TABLE ("position" bigint, id uuid, kind text, user_id uuid, user_address text,
               email_id uuid, addresses text[], thread_id uuid, data jsonb,
               created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    hi bigint;
    h  bigint;
BEGIN
    IF current_setting('transaction_isolation') <> 'read committed' THEN
        RAISE EXCEPTION 'postroom_events_read needs READ COMMITTED, not %',
              upper(current_setting('transaction_isolation'))
              USING ERRCODE = 'PR102';
    END IF;
    SELECT eh.pruned_through INTO h FROM events_horizon eh;
    IF p_since < h THEN
        RAISE EXCEPTION 'position % expired: resync', p_since USING ERRCODE = 'PR101',
              DETAIL = format('events up to position %s were pruned', h);
    END IF;
    hi := postroom_events_head();
    -- a new statement: a snapshot taken after every position <= hi ended
    RETURN QUERY
    SELECT ev.position, ev.id, ev.kind, ev.user_id, u.address, ev.email_id, d.addresses,
           e.thread_id, d.data, ev.created_at
      FROM events ev
      LEFT JOIN users u ON u.id = ev.user_id
      LEFT JOIN emails e ON e.id = ev.email_id
      CROSS JOIN LATERAL postroom_event_details(ev.kind, ev.user_id, e.id,
                                                ev.addresses, ev.data) d
     WHERE ev.position > COALESCE(p_since, 0) AND ev.position <= hi
       AND (p_user IS NULL OR ev.user_id = p_user)
     ORDER BY ev.position
     LIMIT GREATEST(COALESCE(p_limit, 1000), 1);
    -- a prune that committed meanwhile: fail rather than return a gap
    SELECT eh.pruned_through INTO h FROM events_horizon eh;
    IF p_since < h THEN
        RAISE EXCEPTION 'position % expired: resync', p_since USING ERRCODE = 'PR101',
              DETAIL = format('events up to position %s were pruned', h);
    END IF;
END $$;

-- postroom_webhook_claim - 021's, with the details of
-- postroom_event_details (same signature and columns)
CREATE OR REPLACE FUNCTION postroom_webhook_claim(p_endpoint text, p_limit integer, p_lease interval)
RETURNS TABLE ("position" bigint, event_id uuid, attempts integer, kind text,
               user_id uuid, user_address text, addresses text[], email_id uuid,
               thread_id uuid, message_id text, subject text, from_address text,
               from_display_name text, spam boolean, received_at timestamptz,
               has_attachments boolean, data jsonb, created_at timestamptz)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH c AS (
        UPDATE webhook_deliveries d
           SET attempts = d.attempts + 1, next_attempt_at = now() + p_lease
         WHERE (d.endpoint, d.position) IN (
                SELECT x.endpoint, x.position FROM webhook_deliveries x
                 WHERE x.endpoint = p_endpoint AND x.parked_at IS NULL
                   AND x.next_attempt_at <= now()
                 ORDER BY x.next_attempt_at, x.position
                 LIMIT p_limit
                   FOR UPDATE SKIP LOCKED)
        RETURNING d.position, d.event_id, d.attempts)
    SELECT c.position, c.event_id, c.attempts, ev.kind, ev.user_id, u.address,
           d.addresses, ev.email_id, e.thread_id, e.message_id, e.subject,
           e.from_address, e.from_display_name, e.spam, e.received_at,
           EXISTS (SELECT 1 FROM email_attachments a WHERE a.email_id = e.id),
           d.data, ev.created_at
      FROM c JOIN events ev ON ev.position = c.position
      LEFT JOIN users u ON u.id = ev.user_id
      LEFT JOIN emails e ON e.id = ev.email_id
      CROSS JOIN LATERAL postroom_event_details(ev.kind, ev.user_id, e.id,
                                                ev.addresses, ev.data) d
     ORDER BY c.position;
END $$;

SELECT postroom_grants('FUNCTION postroom_event_details(text,uuid,uuid,text[],jsonb)', '');
SELECT postroom_grants('FUNCTION postroom_mailbox_changed(text,uuid,uuid[])', '');
