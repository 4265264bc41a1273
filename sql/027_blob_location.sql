-- 027_blob_location.sql - blobs in an S3-compatible object store (issue 20 section 2)
--
-- With blobs.backend = s3, the store uploads every attachment blob of at
-- least blobs.min_size bytes to the bucket BEFORE its transaction begins,
-- then inserts the blobs row with location 's3' and no content. A row
-- with location 's3' means: the object postroom_blob_key(sha256)
-- ("ab/cd/<64 hex digits>", lib/blob_store_s3.c blob_s3_key) is in the
-- configured bucket. Smaller blobs and the raw skeletons stay here.
--
-- A crash between the upload and the commit leaves an object without a
-- row (an orphan), never a row without its object. postroom_blobs_free
-- (015) now also records each s3 blob it deletes in blob_objects_freed
-- ("last reference expunged: mark for collection"); `postroomctl blobs
-- gc` deletes an object only when no row names it and both its
-- LastModified and its freed_at are older than the grace period.
--
-- The application's read path, for both backends:
--   postroom_blob(sha256)          the content (postgresql) or the
--                                  object key (s3), and the size;
--   postroom_email_raw_parts(id)   the raw message's skeleton pieces and
--                                  references in order (doc/schema.md
--                                  says how to put them together);
--   postroom_email_raw(id) (025)   raises SQLSTATE PR103 for a message
--                                  that references an object: it never
--                                  returns wrong bytes. The view
--                                  email_raw therefore works only for
--                                  mail whose blobs are all here.

ALTER TABLE blobs ALTER COLUMN content DROP NOT NULL;
ALTER TABLE blobs ADD COLUMN location text NOT NULL DEFAULT 'postgresql';
ALTER TABLE blobs ADD CONSTRAINT blobs_location_check
    CHECK (location IN ('postgresql', 's3') AND ((content IS NULL) = (location = 's3')));

CREATE TABLE blob_objects_freed (
    sha256    bytea PRIMARY KEY CHECK (length(sha256) = 32),
    freed_at  timestamptz NOT NULL DEFAULT now()
);

-- postroom_blob_key - the object key of a digest in the bucket
CREATE FUNCTION postroom_blob_key(p_sha256 bytea) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT substr(h, 1, 2) || '/' || substr(h, 3, 2) || '/' || h
      FROM (SELECT encode(p_sha256, 'hex') AS h) s
$$;

-- postroom_blobs_free - delete each blob of p_digests that no attachment
-- references any more, under the store's stripe locks (ascending);
-- an s3 blob's object is marked for collection; returns how many were
-- freed
CREATE OR REPLACE FUNCTION postroom_blobs_free(p_digests bytea[]) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public
    SET plan_cache_mode = force_custom_plan AS $$
DECLARE
    n integer;
BEGIN
    PERFORM pg_advisory_xact_lock(k)
       FROM (SELECT DISTINCT postroom_att_lock_key(d) AS k
               FROM unnest(p_digests) AS x(d) WHERE d IS NOT NULL ORDER BY 1) s;
    WITH del AS (
        DELETE FROM blobs b
         WHERE b.sha256 = ANY (p_digests)
           AND NOT EXISTS (SELECT 1 FROM email_attachments a WHERE a.sha256 = b.sha256)
        RETURNING b.sha256, b.location),
    mark AS (
        INSERT INTO blob_objects_freed (sha256)
        SELECT d.sha256 FROM del d WHERE d.location = 's3'
        ON CONFLICT (sha256) DO UPDATE SET freed_at = now())
    SELECT count(*) INTO n FROM del;
    RETURN n;
END $$;

-- postroom_blob - one blob: its content when it is stored here, its
-- object key when it is in the object store (no row: nothing)
CREATE FUNCTION postroom_blob(p_sha256 bytea)
RETURNS TABLE (content bytea, object_key text, size_bytes bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT b.content,
           CASE WHEN b.location = 's3' THEN postroom_blob_key(b.sha256) END,
           b.size_bytes
      FROM blobs b WHERE b.sha256 = p_sha256
$$;

-- postroom_email_raw_parts - an email's raw message in order: pieces of
-- bytes (line_len NULL: content as it is; empty pieces left out) and
-- references (line_len set: the blob's bytes, from content or from the
-- object object_key, base64-encoded and wrapped in lines of line_len
-- characters ending LF, or CRLF when crlf, with no line end after the
-- last). No rows when the email has no raw message; raises when a
-- referenced blob is missing.
CREATE FUNCTION postroom_email_raw_parts(p_email uuid)
RETURNS TABLE (ordinal integer, content bytea, object_key text, sha256 bytea,
               line_len integer, crlf boolean)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    skel bytea;
    lay smallint;
    pos bigint := 0;
    n integer := 0;
    r record;
BEGIN
    SELECT s.content, s.layout INTO skel, lay FROM email_raw_base s WHERE s.email_id = p_email;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF lay = 1 THEN
        FOR r IN SELECT x.at, x.line_len AS ll, x.crlf AS cr, a.sha256 AS d,
                        b.sha256 AS bd, b.location, b.content AS c, b.size_bytes
                   FROM email_raw_refs x
                   LEFT JOIN email_attachments a ON a.email_id = x.email_id AND a.position = x.position
                   LEFT JOIN blobs b ON b.sha256 = a.sha256
                  WHERE x.email_id = p_email ORDER BY x.ordinal LOOP
            IF r.bd IS NULL OR r.at < pos
               OR (r.location = 'postgresql' AND octet_length(r.c) <> r.size_bytes) THEN
                RAISE EXCEPTION 'postroom_email_raw_parts %: a referenced blob is missing', p_email;
            END IF;
            IF r.at > pos THEN
                n := n + 1;
                RETURN QUERY SELECT n, substring(skel FROM (pos + 1)::integer FOR (r.at - pos)::integer),
                                    NULL::text, NULL::bytea, NULL::integer, NULL::boolean;
            END IF;
            n := n + 1;
            RETURN QUERY SELECT n, r.c,
                                CASE WHEN r.location = 's3' THEN postroom_blob_key(r.bd) END,
                                r.bd, r.ll, r.cr;
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
-- when it has none), as in 025; a message referencing a blob in the
-- object store raises PR103 (the bytes are not in the database)
CREATE OR REPLACE FUNCTION postroom_email_raw(p_email uuid) RETURNS bytea
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
    IF EXISTS (SELECT 1 FROM email_raw_refs x
                 JOIN email_attachments a ON a.email_id = x.email_id AND a.position = x.position
                 JOIN blobs b ON b.sha256 = a.sha256
                WHERE x.email_id = p_email AND b.location = 's3') THEN
        RAISE EXCEPTION 'raw message of % references objects in the object store: use postroom_email_raw_parts',
              p_email USING ERRCODE = 'PR103';
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

SELECT postroom_grants('TABLE blobs',
    'deliver=SELECT, INSERT; app=SELECT; admin=SELECT, UPDATE (content, location), DELETE');
SELECT postroom_grants('TABLE blob_objects_freed', 'admin=SELECT, INSERT, UPDATE, DELETE');
SELECT postroom_grants('FUNCTION postroom_blob_key(bytea)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_blob(bytea)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_email_raw_parts(uuid)', 'app=EXECUTE; admin=EXECUTE');
-- blobs gc and migrate take the store's attachment stripe locks
SELECT postroom_grants('FUNCTION postroom_att_lock_key(bytea)', 'admin=EXECUTE');
