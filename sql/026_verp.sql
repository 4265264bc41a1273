-- 026_verp.sql - VERP (issue 21): a bounce sent back to a per-message
-- envelope sender (milter.verp, lib/verp.c) is linked to the sent email
-- that envelope sender names, even when the bounce returns no headers.
--
-- The milter writes MAIL FROM as LOCAL+verp-HM@DOMAIN: H names the sent
-- email by its Message-Id (postroom_verp_hash), M is an HMAC with the
-- server's secret over the sender's address and H. The store checks M
-- (lib/verp.c, the secret never reaches the database) and asks
-- postroom_verp_message_id for the Message-Id of the newest email sent
-- by the user owning LOCAL@DOMAIN whose hash is H; postroom_report_store
-- (sql/019) links and suppresses by it as by a Message-Id found in the
-- report.

-- postroom_verp_hash - H: the first 8 bytes of SHA-256 of a stored
-- Message-Id (no angle brackets), in hex (lib/verp.c verp_msgid_hash)
CREATE FUNCTION postroom_verp_hash(p_message_id text) RETURNS text
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT left(encode(pg_catalog.sha256(pg_catalog.convert_to(p_message_id, 'UTF8')), 'hex'), 16)
$$;

CREATE INDEX emails_verp_idx ON emails (postroom_verp_hash(message_id))
    WHERE sent_by_user_id IS NOT NULL;

-- postroom_verp_message_id - the Message-Id of the newest email sent by
-- the user owning p_base (an address of the user) whose hash is p_hash;
-- NULL when there is none
CREATE FUNCTION postroom_verp_message_id(p_base text, p_hash text) RETURNS text
LANGUAGE sql STABLE STRICT AS $$
    SELECT e.message_id FROM emails e
     WHERE postroom_verp_hash(e.message_id) = lower(p_hash) AND e.sent_by_user_id IS NOT NULL
       AND e.sent_by_user_id IN (SELECT user_id FROM user_addresses WHERE lower(address) = lower(p_base)
                                 UNION SELECT id FROM users WHERE lower(address) = lower(p_base))
     ORDER BY e.received_at DESC LIMIT 1
$$;

SELECT postroom_grants('FUNCTION postroom_verp_hash(text)',
    'deliver=EXECUTE; app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_verp_message_id(text,text)',
    'deliver=EXECUTE; admin=EXECUTE');
