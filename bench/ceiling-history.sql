-- bench/ceiling-history.sql - bench/lmtp-ceiling's "postroom on a store
-- with history" row (issue 23, migration 034): 25,000 emails already
-- stored before the round (rows of emails only, each with an In-Reply-To
-- and three References, as bench/gin-pending inserts them), autovacuum
-- off on emails so that no VACUUM runs during the round. With 034 the
-- References index holds them in its tree; see ceiling-history-gin.sql
-- for the index as it was before. Never a schema to run.
ALTER TABLE emails SET (autovacuum_enabled = off);
INSERT INTO emails (id, thread_id, message_id, size_bytes, content_sha256, in_reply_to, reference_ids)
SELECT s.u, s.u, 'hist' || s.g || '@bench', 100, sha256(('hist' || s.g)::bytea), 'h3-' || s.g || '@bench',
       ARRAY['h1-' || s.g || '@bench', 'h2-' || s.g || '@bench', 'h3-' || s.g || '@bench']
  FROM (SELECT gen_random_uuid() AS u, g FROM generate_series(1, 25000) g) s;
