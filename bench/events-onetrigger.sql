-- bench/events-onetrigger.sql - issue 19's outbox with its two statement
-- triggers on events (018's NOTIFY postroom_events, 021's webhook
-- enqueue) as one, for bench/events-bench's BENCH_SQL (with
-- BENCH_ALT_ROUNDS): what the second trigger and transition-table scan
-- cost. Same behaviour; a measurement of a candidate migration.

CREATE FUNCTION postroom_events_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    hi bigint;
BEGIN
    INSERT INTO webhook_deliveries (endpoint, position, event_id)
    SELECT w.name, n.position, n.id
      FROM new_events n JOIN webhook_endpoints w ON w.enabled AND n.kind = ANY (w.kinds)
     ORDER BY n.position, w.name;
    SELECT max(n.position) INTO hi FROM new_events n;
    IF hi IS NOT NULL THEN
        PERFORM pg_notify('postroom_events', hi::text);
    END IF;
    RETURN NULL;
END $$;
DROP TRIGGER events_notify ON events;
DROP TRIGGER events_webhook ON events;
CREATE TRIGGER events_inserted AFTER INSERT ON events REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_events_inserted();
