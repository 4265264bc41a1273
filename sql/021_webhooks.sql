-- 021_webhooks.sql - webhooks fed from the outbox (issue 19 part 2):
-- per-(endpoint, event) delivery state, claimed by any number of
-- postroom-webhookd workers on any number of hosts.
--
-- Endpoints come from the configuration file (webhook.url, and
-- deliver.notify_url in the legacy format); the secrets stay there, never
-- in the database. A worker registers its endpoints in webhook_endpoints
-- at start (postroom_webhook_register) by a name; the events trigger
-- below then adds one webhook_deliveries row per enabled endpoint whose
-- kinds include the event's kind, in the transaction that writes the
-- event: an event committed has its deliveries, one rolled back has none.
--
-- Claims. postroom_webhook_claim is ONE autocommitted statement: it picks
-- due rows with FOR UPDATE SKIP LOCKED, counts the attempt and moves
-- next_attempt_at a lease ahead (longer than the HTTP timeout), and
-- returns them. No transaction stays open across the HTTP request, and a
-- claim takes no event position, so the outbox readers never wait for it
-- (postroom_events_read waits only for position holders). Two healthy
-- workers never send one event twice: SKIP LOCKED keeps concurrent claims
-- apart and the lease keeps a claimed row from being due again until the
-- worker has answered. A worker killed mid-send leaves its lease to
-- expire: the row is due again and another worker sends it (a resend,
-- never a loss). postroom_webhook_done deletes a row answered 2xx;
-- postroom_webhook_failed schedules the next attempt (exponential backoff
-- with jitter) or parks the row (410, the attempt limit, or the retry
-- period passed). Parked rows are listed by postroomctl events failed and
-- requeued by postroomctl events retry.

CREATE TABLE webhook_endpoints (
    name        text PRIMARY KEY,                 -- 'webhook', 'notify_url'
    url         text NOT NULL,
    format      text NOT NULL CHECK (format IN ('standard', 'legacy')),
    kinds       text[] NOT NULL,
    enabled     boolean NOT NULL DEFAULT true,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    endpoint         text NOT NULL REFERENCES webhook_endpoints (name) ON DELETE CASCADE,
    position         bigint NOT NULL,              -- events.position
    event_id         uuid NOT NULL,                -- events.id: the webhook-id
    created_at       timestamptz NOT NULL DEFAULT now(),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    parked_at        timestamptz,
    last_status      integer,                      -- HTTP status, 0: no answer
    last_error       text,
    PRIMARY KEY (endpoint, position)
);
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (next_attempt_at)
    WHERE parked_at IS NULL;
CREATE INDEX webhook_deliveries_parked_idx ON webhook_deliveries (parked_at)
    WHERE parked_at IS NOT NULL;

-- postroom_webhook_enqueue - the deliveries of the statement's new events
CREATE FUNCTION postroom_webhook_enqueue() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    INSERT INTO webhook_deliveries (endpoint, position, event_id)
    SELECT w.name, n.position, n.id
      FROM new_events n JOIN webhook_endpoints w ON w.enabled AND n.kind = ANY (w.kinds)
     ORDER BY n.position, w.name;
    RETURN NULL;
END $$;
CREATE TRIGGER events_webhook AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_webhook_enqueue();

-- postroom_webhook_register - a worker's configured endpoint (url,
-- format, kinds); enabled unless p_enabled is false
CREATE FUNCTION postroom_webhook_register(p_name text, p_url text, p_format text,
                                          p_kinds text[], p_enabled boolean DEFAULT true)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    INSERT INTO webhook_endpoints (name, url, format, kinds, enabled)
    VALUES (p_name, p_url, p_format, p_kinds, p_enabled)
    ON CONFLICT (name) DO UPDATE
       SET url = EXCLUDED.url, format = EXCLUDED.format, kinds = EXCLUDED.kinds,
           enabled = EXCLUDED.enabled, updated_at = now()
     WHERE (webhook_endpoints.url, webhook_endpoints.format, webhook_endpoints.kinds,
            webhook_endpoints.enabled)
           IS DISTINCT FROM (EXCLUDED.url, EXCLUDED.format, EXCLUDED.kinds, EXCLUDED.enabled);
$$;

-- postroom_webhook_claim - up to p_limit due deliveries of endpoint
-- p_endpoint, leased for p_lease, with what the body needs
CREATE FUNCTION postroom_webhook_claim(p_endpoint text, p_limit integer, p_lease interval)
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
           ev.addresses, ev.email_id, e.thread_id, e.message_id, e.subject,
           e.from_address, e.from_display_name, e.spam, e.received_at,
           EXISTS (SELECT 1 FROM email_attachments a WHERE a.email_id = e.id),
           ev.data, ev.created_at
      FROM c JOIN events ev ON ev.position = c.position
      LEFT JOIN users u ON u.id = ev.user_id
      LEFT JOIN emails e ON e.id = ev.email_id
     ORDER BY c.position;
END $$;

-- postroom_webhook_done - answered 2xx: the delivery is finished
CREATE FUNCTION postroom_webhook_done(p_endpoint text, p_position bigint)
RETURNS void
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
    DELETE FROM webhook_deliveries WHERE endpoint = p_endpoint AND position = p_position;
$$;

-- postroom_webhook_failed - an attempt failed with HTTP status p_status
-- (0: no answer): park it (410, p_max_attempts reached, or older than
-- p_retry_for), or retry after min(p_base * 2^(attempts-1), p_max_delay),
-- jittered to between half and all of it. Returns true when parked.
CREATE FUNCTION postroom_webhook_failed(p_endpoint text, p_position bigint, p_status integer,
                                        p_error text, p_max_attempts integer,
                                        p_retry_for interval, p_base interval,
                                        p_max_delay interval)
RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    d webhook_deliveries;
    park boolean;
BEGIN
    SELECT * INTO d FROM webhook_deliveries
     WHERE endpoint = p_endpoint AND position = p_position FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    park := p_status = 410 OR d.attempts >= p_max_attempts
            OR d.created_at + p_retry_for <= now();
    UPDATE webhook_deliveries
       SET last_status = p_status, last_error = left(p_error, 500),
           parked_at = CASE WHEN park THEN now() END,
           next_attempt_at = now() + least(p_base * power(2, least(d.attempts - 1, 30)),
                                           p_max_delay) * (0.5 + random() / 2)
     WHERE endpoint = p_endpoint AND position = p_position;
    RETURN park;
END $$;

-- postroom_webhook_retry - requeue parked deliveries: one event (its id
-- or position) or, p_event NULL, all; returns how many
CREATE FUNCTION postroom_webhook_retry(p_event text)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE webhook_deliveries
       SET parked_at = NULL, attempts = 0, next_attempt_at = now(), created_at = now()
     WHERE parked_at IS NOT NULL
       AND (p_event IS NULL OR event_id::text = lower(p_event) OR position::text = p_event);
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

SELECT postroom_grants('TABLE webhook_endpoints', 'webhook=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE webhook_deliveries', 'webhook=SELECT; admin=SELECT');
SELECT postroom_grants('FUNCTION postroom_webhook_enqueue()', '');
SELECT postroom_grants('FUNCTION postroom_webhook_register(text,text,text,text[],boolean)',
    'webhook=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_webhook_claim(text,integer,interval)', 'webhook=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_webhook_done(text,bigint)', 'webhook=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_webhook_failed(text,bigint,integer,text,integer,interval,interval,interval)',
    'webhook=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_webhook_retry(text)', 'admin=EXECUTE');
