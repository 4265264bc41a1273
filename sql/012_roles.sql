-- 012_roles.sql - least-privilege database roles (issue 17 item 5).
-- Each program logs in as its own role, a member of one NOLOGIN group
-- role created here, and can do only what that program needs: a hole in
-- the milter or in deliver is no longer a hole in authentication.
--
-- Group roles (schema_roles; the cluster name is a prefix and the name):
--   authd    postroom-authd: reads keys and users, updates last_used_at
--            and last_login_at; no mail
--   rules    postroom-milter, postroom-policyd: reads domains, users and
--            addresses; policyd's quota tables; no keys, no mail
--   deliver  postroom-deliver, postroom-lmtpd: inserts and links mail,
--            reads domains, users and addresses; no keys
--   app      the application: reads mail, sets the read flag; no keys, no
--            rules tables
--   admin    postroomctl: domains, users, aliases, keys, quotas, reading
--            mail
--   lookup   the MTA's own table lookups (Postfix pgsql:, Exim pgsql):
--            reads domains and addresses
--   webhook  the event sender of the events issue: nothing yet; the
--            migration that adds the sender grants what it needs
-- The owner (the role that runs `postroomctl db migrate`, normally the
-- database owner) owns every object and is used by no daemon.
--
-- The prefix is the setting postroom.role_prefix, which postroomctl db
-- migrate sets from database.role_prefix; unset, it is the database's
-- name and "_" (database postroom: postroom_authd ...), so two databases
-- on one cluster never share a group role. A group role that exists
-- already is used as it is (a DBA may create them beforehand; then the
-- migrating role needs no CREATEROLE).
--
-- THE RULE FOR LATER MIGRATIONS: every table, view, sequence and function
-- a migration creates gets a decision for every group role, with
--   SELECT postroom_grant('TABLE name', 'role', 'privileges');
--   SELECT postroom_grant('FUNCTION name(argtypes)', 'role', '');  -- none
-- one line per role ('' = none). postroom_grant revokes what the role had
-- on the object, grants the privileges, and records the decision in
-- schema_grants; tests/integration/db-roles.sh fails for an object and a
-- role without a recorded decision, and for any privilege of PUBLIC.
-- A new group role is added with postroom_role_add and needs a decision
-- for every existing object too.

CREATE TABLE schema_roles (
    role     text PRIMARY KEY CHECK (role ~ '^[a-z]+$'),
    rolname  name NOT NULL UNIQUE,
    purpose  text NOT NULL
);

CREATE TABLE schema_grants (
    object      text NOT NULL,
    role        text NOT NULL REFERENCES schema_roles (role),
    privileges  text NOT NULL,
    PRIMARY KEY (object, role)
);

-- postroom_role_add - the group role r (prefix || r), created NOLOGIN
-- unless it exists, recorded in schema_roles; the first call fixes the
-- prefix for good (a role already recorded keeps its name)
CREATE FUNCTION postroom_role_add(r text, purpose text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    prefix text := COALESCE(NULLIF(current_setting('postroom.role_prefix', true), ''),
                            current_database() || '_');
    rn text;
BEGIN
    IF EXISTS (SELECT 1 FROM schema_roles s WHERE s.role = r) THEN
        RETURN;
    END IF;
    SELECT left(s.rolname, length(s.rolname) - length(s.role)) INTO rn
      FROM schema_roles s LIMIT 1;
    IF FOUND THEN
        prefix := rn;
    END IF;
    rn := prefix || r;
    IF octet_length(rn) > 63 THEN
        RAISE EXCEPTION 'role name % is longer than 63 bytes: set database.role_prefix', rn;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = rn) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN', rn);
    END IF;
    INSERT INTO schema_roles (role, rolname, purpose) VALUES (r, rn, purpose);
END $$;

-- postroom_grant - the decision for object obj ('TABLE x', 'SEQUENCE x',
-- 'FUNCTION f(types)') and group role r: exactly privs ('' = none).
-- PUBLIC loses every privilege on obj (functions are executable by
-- PUBLIC by default).
CREATE FUNCTION postroom_grant(obj text, r text, privs text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    rn name;
BEGIN
    SELECT rolname INTO STRICT rn FROM schema_roles WHERE role = r;
    IF obj LIKE 'FUNCTION %' THEN  -- as regprocedure prints it: f(text,uuid)
        obj := 'FUNCTION ' || substr(obj, 10)::regprocedure::text;
    END IF;
    EXECUTE format('REVOKE ALL ON %s FROM PUBLIC', obj);
    EXECUTE format('REVOKE ALL ON %s FROM %I', obj, rn);
    IF privs <> '' THEN
        EXECUTE format('GRANT %s ON %s TO %I', privs, obj, rn);
    END IF;
    INSERT INTO schema_grants (object, role, privileges) VALUES (obj, r, privs)
        ON CONFLICT (object, role) DO UPDATE SET privileges = EXCLUDED.privileges;
END $$;

-- postroom_grants - one decision per role for obj; a role not named
-- gets none. decisions: 'role=privileges' items separated by ';'.
CREATE FUNCTION postroom_grants(obj text, decisions text) RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    r record;
    d text;
BEGIN
    FOR r IN SELECT role FROM schema_roles ORDER BY role LOOP
        SELECT trim(substr(x, strpos(x, '=') + 1)) INTO d
          FROM unnest(string_to_array(decisions, ';')) AS u(x)
         WHERE trim(split_part(x, '=', 1)) = r.role;
        PERFORM postroom_grant(obj, r.role, COALESCE(d, ''));
    END LOOP;
    IF EXISTS (SELECT 1 FROM unnest(string_to_array(decisions, ';')) AS u(x)
                WHERE trim(x) <> '' AND trim(split_part(x, '=', 1)) NOT IN
                      (SELECT role FROM schema_roles)) THEN
        RAISE EXCEPTION 'postroom_grants %: unknown role in %', obj, decisions;
    END IF;
END $$;

SELECT postroom_role_add('authd', 'postroom-authd');
SELECT postroom_role_add('rules', 'postroom-milter and postroom-policyd');
SELECT postroom_role_add('deliver', 'postroom-deliver and postroom-lmtpd');
SELECT postroom_role_add('app', 'the application');
SELECT postroom_role_add('admin', 'postroomctl (everything but db migrate)');
SELECT postroom_role_add('lookup', 'the MTA''s table lookups (Postfix pgsql:, Exim pgsql)');
SELECT postroom_role_add('webhook', 'the event sender (events issue)');

-- Functions the migrating role creates from now on are not executable by
-- PUBLIC until a migration grants them.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;

-- Bookkeeping: postroomctl (config check, db migrate's report) reads it.
SELECT postroom_grants('TABLE schema_migrations', 'admin=SELECT');
SELECT postroom_grants('TABLE schema_fixups', '');
SELECT postroom_grants('TABLE schema_roles', 'admin=SELECT');
SELECT postroom_grants('TABLE schema_grants', 'admin=SELECT');

-- Domains, users, addresses.
SELECT postroom_grants('TABLE domains',
    'rules=SELECT; deliver=SELECT; lookup=SELECT; admin=SELECT, INSERT, UPDATE, DELETE');
SELECT postroom_grants('TABLE users',
    'authd=SELECT, UPDATE (last_login_at); rules=SELECT; deliver=SELECT;'
    ' app=SELECT (id, address, display_name); admin=SELECT, INSERT, UPDATE, DELETE');
SELECT postroom_grants('TABLE user_addresses',
    'rules=SELECT; deliver=SELECT; lookup=SELECT; admin=SELECT, INSERT, UPDATE, DELETE');

-- Keys: authd verifies, postroomctl manages; nobody else sees them.
SELECT postroom_grants('TABLE api_keys',
    'authd=SELECT, UPDATE (last_used_at); admin=SELECT, INSERT, UPDATE, DELETE');

-- Sending quotas (postroom-policyd).
SELECT postroom_grants('TABLE quota_limits',
    'rules=SELECT; admin=SELECT, INSERT, UPDATE, DELETE');
SELECT postroom_grants('TABLE quota_usage',
    'rules=SELECT, INSERT, UPDATE, DELETE; admin=SELECT');

-- Mail. deliver inserts and links (sent_by_user_id, thread_id,
-- delivered, user_id); admin's user and alias commands link earlier
-- recipient rows (trigger user_addresses_link runs as the caller).
SELECT postroom_grants('TABLE emails',
    'deliver=SELECT, INSERT, UPDATE (thread_id, sent_by_user_id); app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE email_raw', 'deliver=INSERT; app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE email_recipients',
    'deliver=SELECT, INSERT, UPDATE (delivered, user_id);'
    ' app=SELECT, UPDATE (is_read); admin=SELECT, UPDATE (user_id)');
SELECT postroom_grants('SEQUENCE email_recipients_id_seq', '');
SELECT postroom_grants('TABLE email_attachments', 'deliver=INSERT; app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE blobs', 'deliver=SELECT, INSERT; app=SELECT; admin=SELECT');

-- Threading runs in deliver's transaction.
SELECT postroom_grants('FUNCTION postroom_thread_email(uuid)', 'deliver=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_email_participants(uuid)', 'deliver=EXECUTE; app=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_thread_refs_max()', 'deliver=EXECUTE; app=EXECUTE');

-- Trigger functions fire whoever runs the statement (no EXECUTE needed);
-- the helpers above are the migrating role's alone.
SELECT postroom_grants('FUNCTION postroom_user_primary_sync()', '');
SELECT postroom_grants('FUNCTION postroom_link_recipients()', '');
SELECT postroom_grants('FUNCTION postroom_notify_domains()', '');
SELECT postroom_grants('FUNCTION postroom_notify_keys()', '');
SELECT postroom_grants('FUNCTION postroom_notify_keys_all()', '');
SELECT postroom_grants('FUNCTION postroom_notify_addresses()', '');
SELECT postroom_grants('FUNCTION postroom_role_add(text,text)', '');
SELECT postroom_grants('FUNCTION postroom_grant(text,text,text)', '');
SELECT postroom_grants('FUNCTION postroom_grants(text,text)', '');

-- Revocation confirmations (issue 17 item 4, sql/011_authd_instances.sql):
-- authd keeps its own row and reads the sync sequence; postroomctl key
-- revoke reads the rows and draws the next number.
SELECT postroom_grants('TABLE authd_instances',
    'authd=SELECT, INSERT, UPDATE, DELETE; admin=SELECT');
SELECT postroom_grants('SEQUENCE authd_instances_id_seq', '');
SELECT postroom_grants('SEQUENCE authd_sync_seq', 'authd=SELECT; admin=SELECT, USAGE');
