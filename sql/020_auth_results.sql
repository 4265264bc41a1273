-- 020_auth_results.sql - the SPF, DKIM and DMARC results of an inbound
-- email (issue 22 item 3), as postroom-deliver read them from this hop's
-- trusted headers (lib/verdict.c): policyd's signed verdict and the
-- Authentication-Results of deliver.trusted_authserv_id (OpenDKIM,
-- OpenDMARC). A JSON object, keys left out when there is no result:
--   {"spf": "pass", "dkim": "pass", "dkim_domains": ["example.org"],
--    "dmarc": "fail", "dmarc_policy": "reject", "dmarc_from": "example.org"}
-- NULL: no result at all (a sent copy, mail without any verdict).
-- The column is written once, by the INSERT of the email: the table's
-- grants (012) already cover it (deliver INSERT, app and admin SELECT).

ALTER TABLE emails ADD COLUMN auth_results jsonb;
