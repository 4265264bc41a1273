-- bench/ceiling-nolife.sql - bench/lmtp-ceiling's "postroom without the
-- mailbox lifecycle" row: the trigger that makes a delivered recipient a
-- membership (sql/015) is disabled, and with it everything it fires: the
-- membership row and its modseq lock, the storage usage delta (016), the
-- event with its position, NOTIFY and webhook enqueue (018, 021). The
-- storing path as it was before issue 18: an upper bound of what a cheaper
-- lifecycle could give; never a schema to run.
ALTER TABLE email_recipients DISABLE TRIGGER email_recipients_mailbox_ins;
