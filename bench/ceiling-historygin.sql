-- bench/ceiling-historygin.sql - bench/lmtp-ceiling's "store with history,
-- References index as before 034" row: GIN's default fastupdate = on, so
-- the 25,000 stored emails of ceiling-history.sql wait in the index's
-- pending list (265 pages, bench/gin-pending), which every search of the
-- index reads, as they would on a store between two autovacuum runs.
-- Never a schema to run.
ALTER INDEX emails_reference_ids_idx SET (fastupdate = on);
\ir ceiling-history.sql
