-- 001_init.sql - postroom's initial schema.
-- Applied by `postroomctl db migrate` inside one transaction; recorded in
-- schema_migrations. Addresses are stored in canonical lower-case form by
-- the CLI and daemons; uniqueness is enforced on lower(address) as well so
-- that no path can create two owners for one address.

CREATE TABLE domains (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name        text NOT NULL CHECK (name <> '' AND name = lower(name)),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX domains_name_key ON domains (lower(name));

CREATE TABLE users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    address       text NOT NULL CHECK (address LIKE '%_@_%'),
    display_name  text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE UNIQUE INDEX users_address_key ON users (lower(address));

-- Every address a user receives mail at: the primary address (kind
-- 'primary', kept in step with users.address by trigger) and aliases.
-- One unique index makes an address belong to at most one user.
CREATE TABLE user_addresses (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    address     text NOT NULL CHECK (address LIKE '%_@_%'),
    kind        text NOT NULL DEFAULT 'alias' CHECK (kind IN ('primary', 'alias')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX user_addresses_address_key ON user_addresses (lower(address));
CREATE UNIQUE INDEX user_addresses_one_primary ON user_addresses (user_id) WHERE kind = 'primary';

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text,
    prefix        text NOT NULL CHECK (prefix ~ '^[0-9A-Za-z]{12}$'),
    key_hash      text NOT NULL CHECK (key_hash LIKE '$2b$%'),
    scopes        text[] NOT NULL CHECK (
                      cardinality(scopes) > 0 AND
                      scopes <@ ARRAY['smtp', 'pop3', 'imap', 'api:read', 'api:write', 'app']::text[]),
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX api_keys_active_prefix_key ON api_keys (prefix) WHERE revoked_at IS NULL;
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

-- Content-addressed storage: identical attachment bytes are stored once.
CREATE TABLE blobs (
    sha256      bytea PRIMARY KEY CHECK (length(sha256) = 32),
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    content     bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE emails (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id         text NOT NULL,
    from_address       text NOT NULL DEFAULT '',
    from_display_name  text,
    subject            text NOT NULL DEFAULT '(No Subject)',
    text_body          text,
    html_body          text,
    received_at        timestamptz NOT NULL DEFAULT now(),
    size_bytes         bigint NOT NULL CHECK (size_bytes >= 0),
    in_reply_to        text,
    reference_ids      text[] NOT NULL DEFAULT '{}',
    thread_id          uuid,
    sent_by_user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    spam               boolean NOT NULL DEFAULT false,
    spam_reason        text,
    parse_problem      text,
    -- identity of the message for redelivery detection (MISSION.md
    -- "Beyond"): SHA-256 of the normalised content
    content_sha256     bytea NOT NULL UNIQUE CHECK (length(content_sha256) = 32)
);
CREATE INDEX emails_message_id_idx ON emails (message_id);
CREATE INDEX emails_thread_idx ON emails (thread_id, received_at);
CREATE INDEX emails_sent_by_idx ON emails (sent_by_user_id, received_at DESC) WHERE sent_by_user_id IS NOT NULL;

-- The original message, byte-exact as the MTA passed it (minus the mbox
-- From_ line and per-recipient delivery headers).
CREATE TABLE email_raw (
    email_id  uuid PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE,
    content   bytea NOT NULL
);

CREATE TABLE email_recipients (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email_id      uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    address       text NOT NULL,
    display_name  text,
    type          text NOT NULL CHECK (type IN ('to', 'cc', 'bcc')),
    user_id       uuid REFERENCES users (id) ON DELETE SET NULL,
    delivered     boolean NOT NULL DEFAULT false,
    is_read       boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX email_recipients_email_address_key ON email_recipients (email_id, lower(address));
CREATE INDEX email_recipients_user_idx ON email_recipients (user_id, email_id) WHERE delivered;
CREATE INDEX email_recipients_unlinked_idx ON email_recipients (lower(address)) WHERE user_id IS NULL;

CREATE TABLE email_attachments (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email_id      uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    position      integer NOT NULL,
    filename      text NOT NULL,
    content_type  text NOT NULL,
    size_bytes    bigint NOT NULL CHECK (size_bytes >= 0),
    content_id    text,
    is_inline     boolean NOT NULL DEFAULT false,
    sha256        bytea NOT NULL REFERENCES blobs (sha256),
    UNIQUE (email_id, position)
);
CREATE INDEX email_attachments_sha256_idx ON email_attachments (sha256);

-- Keep the primary address in user_addresses, so that one unique index
-- covers primary addresses and aliases alike.
CREATE FUNCTION postroom_user_primary_sync() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO user_addresses (user_id, address, kind)
        VALUES (NEW.id, lower(NEW.address), 'primary');
    ELSIF lower(NEW.address) IS DISTINCT FROM lower(OLD.address) THEN
        UPDATE user_addresses SET address = lower(NEW.address)
         WHERE user_id = NEW.id AND kind = 'primary';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER users_primary_sync AFTER INSERT OR UPDATE OF address ON users
    FOR EACH ROW EXECUTE FUNCTION postroom_user_primary_sync();

-- Link earlier recipient rows to the user who now owns the address: no
-- code path that creates a user or alias can forget it.
CREATE FUNCTION postroom_link_recipients() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE email_recipients SET user_id = NEW.user_id
     WHERE user_id IS NULL AND lower(address) = lower(NEW.address);
    RETURN NEW;
END $$;
CREATE TRIGGER user_addresses_link AFTER INSERT OR UPDATE OF address ON user_addresses
    FOR EACH ROW EXECUTE FUNCTION postroom_link_recipients();

-- Tell listening daemons that hosted domains changed (milter, policyd).
CREATE FUNCTION postroom_notify_domains() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('postroom_domains', TG_OP);
    RETURN NULL;
END $$;
CREATE TRIGGER domains_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION postroom_notify_domains();

-- Tell authd which key or user changed so it purges cached verifications.
CREATE FUNCTION postroom_notify_keys() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_TABLE_NAME = 'api_keys' THEN
        PERFORM pg_notify('postroom_keys', 'key:' || COALESCE(NEW.id, OLD.id)::text);
    ELSE
        PERFORM pg_notify('postroom_keys', 'user:' || COALESCE(NEW.id, OLD.id)::text);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER api_keys_notify AFTER UPDATE OR DELETE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION postroom_notify_keys();
CREATE TRIGGER users_notify AFTER UPDATE OF address OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION postroom_notify_keys();
