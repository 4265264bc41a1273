-- 007_toast_lz4.sql - compress stored messages with lz4 instead of pglz.
-- PostgreSQL compresses every value over ~2 KB before it goes to TOAST;
-- with the default method (pglz) that compression was the largest single
-- cost of storing a message (doc/BENCHMARKS.md, "Where the time goes").
-- lz4 compresses several times faster and nearly as well. The setting
-- applies to rows written from now on; rows already stored keep pglz and
-- stay readable. A server built without lz4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
                WHERE name = 'default_toast_compression'
                  AND 'lz4' = ANY (enumvals)) THEN
        ALTER TABLE email_raw ALTER COLUMN content SET COMPRESSION lz4;
        ALTER TABLE emails ALTER COLUMN text_body SET COMPRESSION lz4,
                           ALTER COLUMN html_body SET COMPRESSION lz4;
        ALTER TABLE blobs ALTER COLUMN content SET COMPRESSION lz4;
    END IF;
END $$;
