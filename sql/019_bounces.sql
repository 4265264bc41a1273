-- 019_bounces.sql - bounces, delay notices, auto-replies and complaints
-- (issue 21): their class and facts, their link to the sent email they
-- report on, and the senders' suppression lists.
--
-- The store (lib/store_mail.c) classifies every new inbound email
-- (lib/mail_class.c) and, for one that is not ordinary, calls
-- postroom_report_store in the storing transaction. An email without a
-- row in email_reports is ordinary (postroom_email_class says so).
-- A report is linked to a sent email (emails.sent_by_user_id set) whose
-- Message-Id it names; a recipient it reports on is linked only when the
-- sent email had that recipient, so that a forged report cannot suppress
-- an address the user never wrote to. A hard bounce or a complaint puts
-- the recipient on the sender's suppression list (the user's, or with
-- rules.suppression_scope = domain the domain's of the user's address);
-- rules.suppression_soft_count soft bounces within
-- rules.suppression_soft_window seconds do too. postroom-milter and
-- postroom-policyd refuse an authenticated RCPT to a suppressed address
-- (postroom_suppressed) with 550 5.1.1.

CREATE TABLE email_reports (
    email_id            uuid PRIMARY KEY REFERENCES emails (id) ON DELETE CASCADE,
    class               text NOT NULL
                        CHECK (class IN ('bounce-hard', 'bounce-soft', 'delay', 'auto-reply', 'complaint')),
    rule                text NOT NULL,
    original_message_id text,
    created_at          timestamptz NOT NULL DEFAULT now()
);

-- the recipients a report names, with the DSN's facts
CREATE TABLE email_report_recipients (
    email_id    uuid NOT NULL REFERENCES email_reports (email_id) ON DELETE CASCADE,
    position    integer NOT NULL,
    address     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('hard', 'soft', 'delay', 'other')),
    action      text,
    status      text,
    diagnostic  text,
    PRIMARY KEY (email_id, position)
);

-- a report and the sent email it is about; address is the sent email's
-- recipient it reports on (NULL: none it names was one)
CREATE TABLE email_report_links (
    report_email_id uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    sent_email_id   uuid NOT NULL REFERENCES emails (id) ON DELETE CASCADE,
    sent_by_user_id uuid REFERENCES users (id) ON DELETE CASCADE,
    address         text,
    kind            text NOT NULL CHECK (kind IN ('hard', 'soft', 'delay', 'other')),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX email_report_links_sent_idx ON email_report_links (sent_email_id);
CREATE INDEX email_report_links_report_idx ON email_report_links (report_email_id);
CREATE INDEX email_report_links_soft_idx ON email_report_links (lower(address), created_at)
    WHERE kind = 'soft';

-- one suppression list per user, or per domain (domain: the domain of a
-- user's primary address; it applies to every user whose primary
-- address is at that domain)
CREATE TABLE suppressions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     uuid REFERENCES users (id) ON DELETE CASCADE,
    domain      text CHECK (domain = lower(domain)),
    address     text NOT NULL CHECK (address LIKE '%_@_%'),
    reason      text NOT NULL,
    email_id    uuid REFERENCES emails (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((user_id IS NULL) <> (domain IS NULL))
);
CREATE UNIQUE INDEX suppressions_user_key ON suppressions (user_id, lower(address))
    WHERE user_id IS NOT NULL;
CREATE UNIQUE INDEX suppressions_domain_key ON suppressions (domain, lower(address))
    WHERE domain IS NOT NULL;
CREATE INDEX suppressions_address_idx ON suppressions (lower(address));

-- postroom_email_class - the class of an email ('ordinary' without a report)
CREATE FUNCTION postroom_email_class(p_email uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT class FROM email_reports WHERE email_id = p_email), 'ordinary')
$$;

-- postroom_user_domain - the domain of a user's primary address
CREATE FUNCTION postroom_user_domain(p_user uuid) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT lower(split_part(address, '@', 2)) FROM users WHERE id = p_user
$$;

-- postroom_suppress - put address on p_user's list (p_domain NULL) or on
-- p_domain's (p_user NULL); an address already there keeps its first
-- reason. Returns the suppression's id. The roles that may call it write
-- no table themselves (SECURITY DEFINER, search_path pinned).
CREATE FUNCTION postroom_suppress(p_user uuid, p_domain text, p_address text, p_reason text,
                                  p_email uuid DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    sid bigint;
BEGIN
    IF p_user IS NOT NULL THEN
        INSERT INTO suppressions (user_id, address, reason, email_id)
        VALUES (p_user, p_address, p_reason, p_email)
        ON CONFLICT (user_id, lower(address)) WHERE user_id IS NOT NULL DO NOTHING
        RETURNING id INTO sid;
        IF sid IS NULL THEN
            SELECT id INTO sid FROM suppressions
             WHERE user_id = p_user AND lower(address) = lower(p_address);
        END IF;
    ELSIF p_domain IS NOT NULL THEN
        INSERT INTO suppressions (domain, address, reason, email_id)
        VALUES (lower(p_domain), p_address, p_reason, p_email)
        ON CONFLICT (domain, lower(address)) WHERE domain IS NOT NULL DO NOTHING
        RETURNING id INTO sid;
        IF sid IS NULL THEN
            SELECT id INTO sid FROM suppressions
             WHERE domain = lower(p_domain) AND lower(address) = lower(p_address);
        END IF;
    END IF;
    RETURN sid;
END $$;

-- postroom_suppressions_of - the suppressions that apply to a user: its
-- own and its domain's
CREATE FUNCTION postroom_suppressions_of(p_user uuid) RETURNS SETOF suppressions
LANGUAGE sql STABLE AS $$
    SELECT s.* FROM suppressions s
     WHERE s.user_id = p_user OR s.domain = postroom_user_domain(p_user)
     ORDER BY s.created_at, s.id
$$;

-- postroom_suppressed - the suppression that refuses a mail from the
-- authenticated login (one of a user's addresses) to p_address, if any
-- (what postroom-milter and postroom-policyd ask at RCPT)
CREATE FUNCTION postroom_suppressed(p_login text, p_address text) RETURNS SETOF suppressions
LANGUAGE sql STABLE AS $$
    SELECT s.* FROM user_addresses l JOIN users u ON u.id = l.user_id
      JOIN suppressions s ON lower(s.address) = lower(p_address)
       AND (s.user_id = u.id OR s.domain = lower(split_part(u.address, '@', 2)))
     WHERE lower(l.address) = lower(p_login)
     LIMIT 1
$$;

-- postroom_suppression_remove - take address off p_user's list (p_domain
-- NULL) or p_domain's; the number of entries removed (SECURITY DEFINER)
CREATE FUNCTION postroom_suppression_remove(p_user uuid, p_domain text, p_address text)
RETURNS integer LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    n integer;
BEGIN
    DELETE FROM suppressions
     WHERE lower(address) = lower(p_address)
       AND ((p_user IS NOT NULL AND user_id = p_user)
            OR (p_user IS NULL AND domain = lower(p_domain)));
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- postroom_report_store - the report p_email (classified by the store):
-- its row and recipients, the link to the sent email it names, the
-- suppressions it causes. p_scope 'user' or 'domain'; p_soft_count soft
-- bounces (0: never) within p_soft_window seconds suppress.
CREATE FUNCTION postroom_report_store(p_email uuid, p_class text, p_rule text, p_orig text,
                                      p_addrs text[], p_kinds text[], p_actions text[],
                                      p_statuses text[], p_diags text[], p_scope text,
                                      p_soft_count integer, p_soft_window integer)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    sent_id   uuid;
    sent_user uuid;
    dom       text;
    a         text;
    k         text;
    n         integer;
    i         integer;
BEGIN
    INSERT INTO email_reports (email_id, class, rule, original_message_id)
    VALUES (p_email, p_class, p_rule, p_orig);
    INSERT INTO email_report_recipients (email_id, position, address, kind, action, status, diagnostic)
    SELECT p_email, r.n, r.a, r.k, r.ac, r.st, r.d
      FROM unnest(p_addrs, p_kinds, p_actions, p_statuses, p_diags) WITH ORDINALITY
           AS r(a, k, ac, st, d, n);
    IF p_orig IS NULL THEN
        RETURN;
    END IF;
    SELECT e.id, e.sent_by_user_id INTO sent_id, sent_user FROM emails e
     WHERE e.message_id = p_orig AND e.sent_by_user_id IS NOT NULL AND e.id <> p_email
     ORDER BY e.received_at DESC LIMIT 1;
    IF sent_id IS NULL THEN
        RETURN;
    END IF;
    dom := CASE WHEN p_scope = 'domain' THEN postroom_user_domain(sent_user) END;
    IF COALESCE(array_length(p_addrs, 1), 0) = 0 THEN
        INSERT INTO email_report_links (report_email_id, sent_email_id, sent_by_user_id, address, kind)
        VALUES (p_email, sent_id, sent_user, NULL, 'other');
        RETURN;
    END IF;
    FOR i IN 1 .. array_length(p_addrs, 1) LOOP
        a := p_addrs[i];
        k := p_kinds[i];
        IF NOT EXISTS (SELECT 1 FROM email_recipients r
                        WHERE r.email_id = sent_id AND lower(r.address) = lower(a)) THEN
            a := NULL;
        END IF;
        INSERT INTO email_report_links (report_email_id, sent_email_id, sent_by_user_id, address, kind)
        VALUES (p_email, sent_id, sent_user, a, k);
        CONTINUE WHEN a IS NULL;
        IF p_class = 'complaint' THEN
            PERFORM postroom_suppress(CASE WHEN dom IS NULL THEN sent_user END, dom, a,
                                      'complaint', p_email);
        ELSIF k = 'hard' THEN
            PERFORM postroom_suppress(CASE WHEN dom IS NULL THEN sent_user END, dom, a,
                                      'hard bounce: ' || COALESCE(p_statuses[i], 'failed'), p_email);
        ELSIF k = 'soft' AND p_soft_count > 0 THEN
            SELECT count(*) INTO n FROM email_report_links l
             WHERE l.kind = 'soft' AND lower(l.address) = lower(a)
               AND l.created_at > now() - make_interval(secs => p_soft_window)
               AND (l.sent_by_user_id = sent_user
                    OR (dom IS NOT NULL AND postroom_user_domain(l.sent_by_user_id) = dom));
            IF n >= p_soft_count THEN
                PERFORM postroom_suppress(CASE WHEN dom IS NULL THEN sent_user END, dom, a,
                                          format('%s soft bounces within %s s', n, p_soft_window),
                                          p_email);
            END IF;
        END IF;
    END LOOP;
END $$;

SELECT postroom_grants('TABLE email_reports', 'deliver=SELECT, INSERT; app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE email_report_recipients', 'deliver=INSERT; app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE email_report_links', 'deliver=SELECT, INSERT; app=SELECT; admin=SELECT');
SELECT postroom_grants('TABLE suppressions', 'deliver=SELECT; rules=SELECT; app=SELECT; admin=SELECT');
SELECT postroom_grants('SEQUENCE suppressions_id_seq', '');
SELECT postroom_grants('FUNCTION postroom_email_class(uuid)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_user_domain(uuid)',
    'deliver=EXECUTE; rules=EXECUTE; app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_suppress(uuid,text,text,text,uuid)',
    'deliver=EXECUTE; app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_suppressions_of(uuid)', 'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_suppressed(text,text)',
    'rules=EXECUTE; app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_suppression_remove(uuid,text,text)',
    'app=EXECUTE; admin=EXECUTE');
SELECT postroom_grants('FUNCTION postroom_report_store(uuid,text,text,text,text[],text[],text[],text[],text[],text,integer,integer)',
    'deliver=EXECUTE');
