-- 029_schema_compat.sql - the schema version check (issue 23): every
-- daemon refuses a schema it was not built for (lib/schema_check.c),
-- unless each migration newer than its build is marked compatible with
-- it. compatible_from is the lowest build version that works on a schema
-- with the migration applied; NULL: only builds that know the migration.
-- A migration file marks itself with a line
--   -- postroom: compatible_from N
-- which tools/embed-sql compiles in and postroomctl db migrate records
-- here (lib/migrate.c). This one only adds a column and a grant that
-- builds of version 28 never read: they work on it.
-- postroom: compatible_from 28

ALTER TABLE schema_migrations ADD COLUMN compatible_from integer
    CHECK (compatible_from > 0 AND compatible_from < version);

-- every daemon reads it at each connection it opens
SELECT postroom_grants('TABLE schema_migrations',
    'admin=SELECT; authd=SELECT; rules=SELECT; deliver=SELECT; app=SELECT; webhook=SELECT');
