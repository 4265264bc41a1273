-- 010_attachment_filename.sql - attachment filenames an application can
-- use as is. filename is now the safe form of the name the sender gave
-- (lib/filename_safe.c: the last path component, no control or
-- bidirectional formatting characters, no leading dots, no Windows device
-- name, at most 255 bytes, never empty); filename_original keeps that name
-- as decoded (NULL: the part named none, filename was generated).
ALTER TABLE email_attachments ADD COLUMN filename_original text;

-- Stored mail: what filename held is the best original there is (for a
-- part that named none it is the generated name). The safe form is not
-- computed here: the rule is written once, in C. The row below asks
-- postroomctl db migrate to run the step 'attachment_filename'
-- (lib/migrate_fixup.c: filename := filename_safe(filename, ...)) after
-- this migration, in batches of their own transactions, each recording
-- how far it got in after_id (an interrupted run resumes there); the row
-- is deleted when the step is done. Mail delivered meanwhile already has
-- a safe filename, which the step leaves as it is.
UPDATE email_attachments SET filename_original = filename;

CREATE TABLE schema_fixups (
    name      text PRIMARY KEY,
    after_id  uuid
);
INSERT INTO schema_fixups (name) VALUES ('attachment_filename');
