-- 030_raw_text_once.sql - each text part's bytes stored once too (issue 20 item 1)
--
-- The decoded text of a message's text/plain and text/html parts is
-- kept in emails.text_body and emails.html_body for the application;
-- until now the raw message kept the same bytes a second time. The store
-- now also cuts out of the raw message the encoded body of a text part
-- whose decoded text is a range of text_body or html_body (charset
-- absent, UTF-8 or US-ASCII; no transfer encoding, or base64), when the
-- range, as it is or encoded in base64 in the received layout,
-- reproduces the received bytes exactly (lib/raw_compact.c; one
-- mismatch and the message is stored whole, as for attachments). A
-- reference row says which:
--   source 0  the blob of the email's attachment at position (025);
--   source 1  bytes [src_off, src_off + src_len) of text_body (UTF-8),
--   source 2  the same of html_body;
--   line_len  0: the bytes as they are (a text without transfer
--             encoding), else base64 in lines of line_len characters.
-- No role may update text_body or html_body (012), and the emails row
-- lives as long as its raw message (ON DELETE CASCADE), so a reference
-- never loses its text.
--
-- postroom_email_raw_parts returns a verbatim text as a piece (line_len
-- NULL), a base64 text as a reference with its content and its SHA-256;
-- its contract (doc/schema.md) is unchanged. postroom_email_raw is now
-- the concatenation of those rows. Both take time linear in the
-- message, however many parts were cut (deliver-hostile.sh). Texts
-- under RAW_TEXT_MIN (256) bytes are not cut: a reference row costs
-- about as much.
--
-- Builds of version 29 store mail on this schema as before (source
-- defaults to 0); their postroomctl cannot rebuild a message with a text
-- reference (it says a blob is missing), so upgrade postroomctl first.
-- postroom: compatible_from 29

ALTER TABLE email_raw_refs
    ADD COLUMN source smallint NOT NULL DEFAULT 0 CHECK (source IN (0, 1, 2)),
    ADD COLUMN src_off bigint CHECK (src_off >= 0),
    ADD COLUMN src_len bigint CHECK (src_len >= 1),
    DROP CONSTRAINT email_raw_refs_line_len_check,
    ADD CONSTRAINT email_raw_refs_line_len_check CHECK (line_len >= 0),
    ADD CONSTRAINT email_raw_refs_source_range CHECK (
        CASE WHEN source = 0 THEN src_off IS NULL AND src_len IS NULL AND line_len >= 1
             ELSE src_off IS NOT NULL AND src_len IS NOT NULL AND position = 0 END);

-- postroom_raw_b64 - bytes in base64, in lines of line_len characters
-- joined by LF or CRLF, none after the last (the layout of a reference).
-- plpgsql: the encoding is computed once into a variable (an sql
-- function would be inlined, and its subquery pulled up, so the encoding
-- would be computed again for each line)
CREATE FUNCTION postroom_raw_b64(p_content bytea, p_line_len integer, p_crlf boolean)
RETURNS bytea LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog AS $$
DECLARE
    b64 bytea := decode(replace(encode(p_content, 'base64'), E'\n', ''), 'escape');
BEGIN
    RETURN COALESCE((SELECT string_agg(substring(b64 FROM i FOR p_line_len),
                                       CASE WHEN p_crlf THEN '\x0d0a'::bytea ELSE '\x0a'::bytea END
                                       ORDER BY i)
                       FROM generate_series(1, octet_length(b64), p_line_len) AS g(i)), '');
END $$;

CREATE OR REPLACE FUNCTION postroom_email_raw_parts(p_email uuid)
RETURNS TABLE (ordinal integer, content bytea, object_key text, sha256 bytea,
               line_len integer, crlf boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    skel bytea;
    lay smallint;
    pos bigint := 0;
    n integer := 0;
    r record;
    txt bytea;
    tb bytea;
    hb bytea;
BEGIN
    -- || '': the skeleton decompressed once; a compressed value would be
    -- decompressed again up to each piece read from it
    SELECT s.content || ''::bytea, s.layout INTO skel, lay
      FROM email_raw_base s WHERE s.email_id = p_email;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF lay = 1 THEN
        -- the bodies once (a message may have thousands of text parts)
        IF EXISTS (SELECT 1 FROM email_raw_refs x WHERE x.email_id = p_email AND x.source <> 0) THEN
            SELECT convert_to(e.text_body, 'UTF8'), convert_to(e.html_body, 'UTF8') INTO tb, hb
              FROM emails e WHERE e.id = p_email;
        END IF;
        FOR r IN SELECT x.at, x.line_len AS ll, x.crlf AS cr, x.source AS src, x.src_off AS so,
                        x.src_len AS sl, b.sha256 AS bd, b.location, b.content AS c, b.size_bytes
                   FROM email_raw_refs x
                   LEFT JOIN email_attachments a
                          ON x.source = 0 AND a.email_id = x.email_id AND a.position = x.position
                   LEFT JOIN blobs b ON b.sha256 = a.sha256
                  WHERE x.email_id = p_email ORDER BY x.ordinal LOOP
            IF r.src <> 0 THEN
                txt := substring(CASE WHEN r.src = 1 THEN tb ELSE hb END
                                 FROM (r.so + 1)::integer FOR r.sl::integer);
                IF txt IS NULL OR octet_length(txt) <> r.sl OR r.at < pos THEN
                    RAISE EXCEPTION 'postroom_email_raw_parts %: a referenced text is missing', p_email;
                END IF;
            ELSIF r.bd IS NULL OR r.at < pos
               OR (r.location = 'postgresql' AND octet_length(r.c) <> r.size_bytes) THEN
                RAISE EXCEPTION 'postroom_email_raw_parts %: a referenced blob is missing', p_email;
            END IF;
            IF r.at > pos THEN
                n := n + 1;
                RETURN QUERY SELECT n, substring(skel FROM (pos + 1)::integer FOR (r.at - pos)::integer),
                                    NULL::text, NULL::bytea, NULL::integer, NULL::boolean;
            END IF;
            n := n + 1;
            IF r.src = 0 THEN
                RETURN QUERY SELECT n, r.c,
                                    CASE WHEN r.location = 's3' THEN postroom_blob_key(r.bd) END,
                                    r.bd, r.ll, r.cr;
            ELSIF r.ll = 0 THEN
                RETURN QUERY SELECT n, txt, NULL::text, NULL::bytea, NULL::integer, NULL::boolean;
            ELSE
                RETURN QUERY SELECT n, txt, NULL::text, pg_catalog.sha256(txt), r.ll, r.cr;
            END IF;
            pos := r.at;
        END LOOP;
    END IF;
    IF octet_length(skel) > pos OR n = 0 THEN
        n := n + 1;
        RETURN QUERY SELECT n, substring(skel FROM (pos + 1)::integer),
                            NULL::text, NULL::bytea, NULL::integer, NULL::boolean;
    END IF;
END $$;

-- postroom_email_raw - the original bytes of an email's raw message (NULL
-- when it has none): its parts put together; a message referencing a
-- blob in the object store raises PR103 (027), before any part is read
CREATE OR REPLACE FUNCTION postroom_email_raw(p_email uuid) RETURNS bytea
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    skel bytea;
    lay smallint;
BEGIN
    SELECT s.content, s.layout INTO skel, lay FROM email_raw_base s WHERE s.email_id = p_email;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF lay <> 1 THEN
        RETURN skel;
    END IF;
    IF EXISTS (SELECT 1 FROM email_raw_refs x
                 JOIN email_attachments a ON a.email_id = x.email_id AND a.position = x.position
                 JOIN blobs b ON b.sha256 = a.sha256
                WHERE x.email_id = p_email AND x.source = 0 AND b.location = 's3') THEN
        RAISE EXCEPTION 'raw message of % references objects in the object store: use postroom_email_raw_parts',
              p_email USING ERRCODE = 'PR103';
    END IF;
    -- one aggregate: appending part after part would copy the message
    -- again for each of them
    RETURN (SELECT COALESCE(string_agg(CASE WHEN p.line_len IS NULL THEN p.content
                                            ELSE postroom_raw_b64(p.content, p.line_len, p.crlf) END,
                                       ''::bytea ORDER BY p.ordinal), ''::bytea)
              FROM postroom_email_raw_parts(p_email) AS p);
END $$;

SELECT postroom_grants('FUNCTION postroom_raw_b64(bytea, integer, boolean)', 'app=EXECUTE; admin=EXECUTE');
