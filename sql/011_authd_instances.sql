-- 011_authd_instances.sql - revocations that every running postroom-authd
-- confirms (issue 17, item 4).
--
-- Each authd keeps one row here while it runs: it inserts it when its
-- LISTEN connection is (re)established, refreshes last_seen every 5 s and
-- deletes it at a clean stop. "postroomctl key revoke" commits the
-- revocation, then sends NOTIFY postroom_authd_sync with a number from
-- authd_sync_seq; an authd that has applied every notification before it
-- (the key's cache purge among them: notifications arrive in commit order)
-- writes the number into synced. postroomctl waits, up to
-- authd.revoke_wait seconds, until every authd seen in the last 15 s has
-- synced >= its number.
--
-- Privileges (least-privilege roles): authd inserts, updates and deletes
-- its own row and reads authd_sync_seq; the admin role reads the table and
-- calls nextval on the sequence.
CREATE TABLE authd_instances (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    host text NOT NULL,
    pid integer NOT NULL,
    started_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL DEFAULT now(),
    cache_ttl integer NOT NULL DEFAULT 0,
    synced bigint NOT NULL DEFAULT 0
);
CREATE SEQUENCE authd_sync_seq AS bigint;
