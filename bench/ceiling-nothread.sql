-- bench/ceiling-nothread.sql - bench/lmtp-ceiling's "postroom without
-- threading" row: postroom_thread_email (sql/015) returns the new email's
-- own id at once (lmtpd inserts it with thread_id = id), so no Message-Id
-- lock, no participants, no lookup of parents and children. An upper bound
-- of what any cheaper threading could give; never a schema to run.
CREATE OR REPLACE FUNCTION postroom_thread_email(new_id uuid) RETURNS uuid
LANGUAGE sql AS 'SELECT new_id';
