-- 025_raw_once.sql - each attachment's bytes stored once (issue 20 item 1)
--
-- The raw message used to be stored whole in email_raw.content, and each
-- extracted attachment again, decoded, in blobs. Now the store cuts the
-- base64 text of every extracted attachment out of the raw message when
-- the attachment's blob, encoded again in the same layout, reproduces
-- that text byte for byte (lib/raw_compact.c; otherwise the message is
-- stored whole). What is stored:
--   email_raw_base  the message with those ranges cut out (the
--                   skeleton), or the message whole; layout 0 = whole,
--                   not examined (stored before 025: postroomctl mail
--                   compact-raw converts it), 1 = skeleton with
--                   references, 2 = whole, examined (kept so);
--   email_raw_refs  one row per range cut: the email's own attachment
--                   row (position) whose blob goes back at offset "at"
--                   of the skeleton, in lines of line_len characters
--                   ended by LF or CRLF (none after the last line).
-- postroom_email_raw(email) rebuilds the original bytes; the view
-- email_raw(email_id, content) keeps today's readers (and writers of
-- whole messages) working. The references point at the email's own
-- email_attachments rows, which live as long as the email does
-- (ON DELETE CASCADE from emails for both; a reference whose row or
-- blob is missing makes postroom_email_raw raise), so expunging and
-- postroom_blobs_free (015, 017) keep every blob a skeleton needs.

ALTER TABLE email_raw RENAME TO email_raw_base;
ALTER TABLE email_raw_base RENAME CONSTRAINT email_raw_pkey TO email_raw_base_pkey;
ALTER TABLE email_raw_base
    ADD COLUMN layout smallint NOT NULL DEFAULT 0 CHECK (layout IN (0, 1, 2));

CREATE TABLE email_raw_refs (
    email_id  uuid NOT NULL REFERENCES email_raw_base (email_id) ON DELETE CASCADE,
    ordinal   integer NOT NULL CHECK (ordinal >= 1),
    position  integer NOT NULL,
    at        bigint NOT NULL CHECK (at >= 0),
    line_len  integer NOT NULL CHECK (line_len >= 1),
    crlf      boolean NOT NULL,
    PRIMARY KEY (email_id, ordinal)
);

-- postroom_email_raw - the original bytes of an email's raw message (NULL
-- when it has none): the skeleton with each referenced blob encoded in
-- base64 (PostgreSQL's encode, its line breaks taken out) and wrapped
-- again in the recorded layout
CREATE FUNCTION postroom_email_raw(p_email uuid) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    skel bytea;
    lay smallint;
    res bytea := '';
    pos bigint := 0;
    r record;
    b64 bytea;
BEGIN
    SELECT s.content, s.layout INTO skel, lay FROM email_raw_base s WHERE s.email_id = p_email;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF lay <> 1 THEN
        RETURN skel;
    END IF;
    FOR r IN SELECT x.at, x.line_len, x.crlf, b.content, b.size_bytes
               FROM email_raw_refs x
               LEFT JOIN email_attachments a ON a.email_id = x.email_id AND a.position = x.position
               LEFT JOIN blobs b ON b.sha256 = a.sha256
              WHERE x.email_id = p_email ORDER BY x.ordinal LOOP
        IF r.content IS NULL OR r.at < pos OR octet_length(r.content) <> r.size_bytes THEN
            RAISE EXCEPTION 'postroom_email_raw %: a referenced blob is missing', p_email;
        END IF;
        b64 := decode(replace(encode(r.content, 'base64'), E'\n', ''), 'escape');
        res := res || substring(skel FROM (pos + 1)::integer FOR (r.at - pos)::integer)
               || COALESCE((SELECT string_agg(substring(b64 FROM i FOR r.line_len),
                                              CASE WHEN r.crlf THEN '\x0d0a'::bytea
                                                   ELSE '\x0a'::bytea END ORDER BY i)
                              FROM generate_series(1, octet_length(b64), r.line_len) AS g(i)),
                           '');
        pos := r.at;
    END LOOP;
    RETURN res || substring(skel FROM (pos + 1)::integer);
END $$;

CREATE VIEW email_raw AS
    SELECT s.email_id,
           CASE WHEN s.layout = 1 THEN postroom_email_raw(s.email_id) ELSE s.content END
               AS content
      FROM email_raw_base s;

-- a whole message written to the view (tests, tools) is stored whole
CREATE FUNCTION postroom_email_raw_insert() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO email_raw_base (email_id, content, layout) VALUES (NEW.email_id, NEW.content, 2);
    RETURN NEW;
END $$;
CREATE TRIGGER email_raw_insert INSTEAD OF INSERT ON email_raw
    FOR EACH ROW EXECUTE FUNCTION postroom_email_raw_insert();

SELECT postroom_grants('TABLE email_raw_base',
    'deliver=INSERT; app=SELECT; admin=SELECT, UPDATE (content, layout)');
SELECT postroom_grants('TABLE email_raw_refs', 'deliver=INSERT; app=SELECT; admin=SELECT, INSERT');
SELECT postroom_grants('TABLE email_raw', 'deliver=INSERT; app=SELECT; admin=SELECT');
SELECT postroom_grants('FUNCTION postroom_email_raw(uuid)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_email_raw_insert()', '');
