-- 024_events_prune_kept.sql - the events prune keeps what is not yet
-- handled (issue 19: "parked events are kept until handled").
--
-- 018's postroom_events_prune deleted every event older than the
-- retention period, so an event whose webhook delivery (021) was still
-- pending or parked lost its body: postroom_webhook_claim joins events,
-- and the delivery could never be sent again. Now an event with a
-- webhook_deliveries row (pending or parked: a row is deleted when the
-- endpoint answers 2xx) is skipped; it goes in a later prune, once it is
-- delivered (or its endpoint is removed, which cascades).
--
-- The read horizon. events_horizon.pruned_through is still the highest
-- position deleted, so it can pass a kept event: a reader asking for a
-- position below the horizon still gets "position expired: resync"
-- (PR101) even though some older events are kept, because others around
-- them are gone. A reader at or above the horizon never needed the kept
-- ones (their positions are below its own). The kept events are for the
-- webhook workers, which claim by delivery row, never by position range.

-- for the NOT EXISTS below (the primary key leads with endpoint)
CREATE INDEX webhook_deliveries_position_idx ON webhook_deliveries (position);

-- postroom_events_prune - delete at most p_limit events older than
-- p_keep that no webhook delivery still waits for, lowest positions
-- first; the number deleted (0: done). One short transaction per call:
-- postroomctl events prune loops.
CREATE OR REPLACE FUNCTION postroom_events_prune(p_keep interval DEFAULT '7 days',
                                                 p_limit integer DEFAULT 10000)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    n   integer;
    top bigint;
BEGIN
    WITH d AS (
        DELETE FROM events WHERE position IN (
            SELECT ev.position FROM events ev
             WHERE ev.created_at < now() - p_keep
               AND NOT EXISTS (SELECT 1 FROM webhook_deliveries w
                                WHERE w.position = ev.position)
             ORDER BY ev.position LIMIT GREATEST(COALESCE(p_limit, 10000), 1))
        RETURNING position)
    SELECT count(*), max(d.position) INTO n, top FROM d;
    IF top IS NOT NULL THEN
        UPDATE events_horizon SET pruned_through = GREATEST(pruned_through, top);
    END IF;
    RETURN n;
END $$;

SELECT postroom_grants('FUNCTION postroom_events_prune(interval,integer)', 'admin=EXECUTE');
