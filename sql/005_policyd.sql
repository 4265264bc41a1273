-- 005_policyd.sql - sending quotas of postroom-policyd.
-- quota_limits: per-user overrides of policyd.quota_messages and
-- policyd.quota_recipients (NULL = the configured default, 0 = unlimited),
-- set with `postroomctl quota set`.
-- quota_usage: messages and recipients per authenticated login (lower-case
-- SASL user name) and clock hour, shared by every host. Each policyd adds
-- its in-memory counts in batches (policyd.quota_flush_interval) with one
-- INSERT ... ON CONFLICT DO UPDATE and reads the totals back; rows older
-- than three hours are deleted by the daemons.

CREATE TABLE quota_limits (
    user_id              uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    messages_per_hour    integer CHECK (messages_per_hour >= 0),
    recipients_per_hour  integer CHECK (recipients_per_hour >= 0),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE quota_usage (
    login         text NOT NULL CHECK (login <> '' AND login = lower(login)),
    window_start  timestamptz NOT NULL,
    messages      integer NOT NULL DEFAULT 0 CHECK (messages >= 0),
    recipients    integer NOT NULL DEFAULT 0 CHECK (recipients >= 0),
    PRIMARY KEY (login, window_start)
);
CREATE INDEX quota_usage_window_idx ON quota_usage (window_start);
