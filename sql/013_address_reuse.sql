-- 013_address_reuse.sql - a reused address never inherits the previous
-- owner's mail (issue 17, item 1).
--
-- Before: removing a user set email_recipients.user_id to NULL (ON DELETE
-- SET NULL) and left delivered true; the trigger user_addresses_link then
-- linked every unlinked row to the next user or alias with that address,
-- so whoever got the address next read the previous owner's mailbox.
--
-- Now a recipient row remembers that it once had an owner:
-- email_recipients.orphaned_at is set, by a trigger, whenever user_id goes
-- from a user to NULL (the ON DELETE SET NULL of a removed user, however
-- the user was removed, or any UPDATE). Late linking takes only rows that
-- never had an owner: mail that arrived while nobody owned the address.
-- An orphaned row stays unlinked: kept, with the mail, for the operator's
-- audit until the mail lifecycle removes it; it is never linked to anyone
-- again. An alias removed and re-created for another user needs nothing
-- more: removing an alias unlinks nothing (the rows stay with the user
-- who received them), and when that user is removed the rows are orphaned
-- like all of the user's.
--
-- Rows stored before this migration: an unlinked row may be mail that
-- arrived before its address had an owner, or mail of a removed user; the
-- old schema kept nothing that tells the two apart. Every unlinked row is
-- marked orphaned (orphaned_at = the time of the migration): a stranger
-- must never get another person's mail, and the cost is only that mail
-- which arrived for a not yet created address is not linked when that
-- address is created later. An operator who knows that an address never
-- had an owner can clear orphaned_at on its rows before creating the user
-- (doc/schema.md).

ALTER TABLE email_recipients ADD COLUMN orphaned_at timestamptz;

UPDATE email_recipients SET orphaned_at = now() WHERE user_id IS NULL;

-- postroom_recipient_orphan - the row loses its owner: remember when
CREATE FUNCTION postroom_recipient_orphan() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.orphaned_at := now();
    RETURN NEW;
END $$;
CREATE TRIGGER email_recipients_orphan BEFORE UPDATE OF user_id ON email_recipients
    FOR EACH ROW WHEN (OLD.user_id IS NOT NULL AND NEW.user_id IS NULL)
    EXECUTE FUNCTION postroom_recipient_orphan();

-- Link earlier recipient rows that never had an owner to the user who
-- now owns the address.
CREATE OR REPLACE FUNCTION postroom_link_recipients() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE email_recipients SET user_id = NEW.user_id
     WHERE user_id IS NULL AND orphaned_at IS NULL AND lower(address) = lower(NEW.address);
    RETURN NEW;
END $$;

DROP INDEX email_recipients_unlinked_idx;
CREATE INDEX email_recipients_unlinked_idx ON email_recipients (lower(address))
    WHERE user_id IS NULL AND orphaned_at IS NULL;

-- Database roles (when the roles migration ran before this one): a
-- trigger function needs no EXECUTE for anybody.
DO $$
BEGIN
    IF to_regprocedure('postroom_grants(text,text)') IS NOT NULL THEN
        PERFORM postroom_grants('FUNCTION postroom_recipient_orphan()', '');
    END IF;
END $$;
