/*
 * NAME
 *	conf_params - the shared sections of postroom.conf
 * DESCRIPTION
 *	Declares, once each, the parameters that several programs read:
 *	database, limits, apikey, security and rules (the envelope rules of
 *	lib/rules.c and lib/rules_pg.c, read by the milter, policyd, deliver
 *	and lmtpd). Each program declares its own section in
 *	PROGRAM/PROGRAM_params.c and registers it (conf_register);
 *	postroomctl registers them all, so "postroomctl config params" is the
 *	whole table and doc/postroom.conf.5 documents exactly it
 *	(tests/unit/test-config-doc.sh). Also the list of every section name,
 *	and the renamed parameters still accepted under their old names.
 * NEVER
 *	includes anything from a program folder.
 */
#include "conf.h"

#define MiB (1024LL * 1024LL)

static const struct cfg_param conf_params_shared[] = {
	/* database */
	{ "database.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "libpq connection string of postroomctl (group PREFIXadmin) and of each program without its own SECTION.conninfo; unset: libpq's PG* variables" },
	{ "database.connect_timeout", CFG_INT, "10", 1, 300, 0,
	  "seconds to wait for a database connection" },
	{ "database.migrate_conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "connection string of postroomctl db migrate: the role that owns the schema; unset = database.conninfo" },
	{ "database.role_prefix", CFG_STRING, NULL, 0, 0, 0,
	  "prefix of the group roles db migrate creates (PREFIXauthd ...); unset = the database name and _" },

	/* shared limits (milter and deliver use the same definition of size) */
	{ "limits.message_size_max", CFG_SIZE, "52428800", 1024, 2048 * MiB, 0,
	  "largest message in bytes, headers and body counted with CRLF line endings" },
	{ "limits.attachment_size_max", CFG_SIZE, "26214400", 1024, 2048 * MiB, 0,
	  "largest decoded attachment in bytes; one larger is refused in the SMTP session" },
	{ "limits.mime_parts_max", CFG_INT, "50000", 20000, 10000000, 0,
	  "MIME parts of one message walked for bodies and attachments; the rest stay in the raw message" },

	/* blobs: where large attachments live (lib/blob_store*.c) */
	{ "blobs.backend", CFG_STRING, "postgresql", 0, 0, 0,
	  "postgresql (the blobs table) or s3 (an S3-compatible object store)" },
	{ "blobs.endpoint", CFG_STRING, NULL, 0, 0, 0,
	  "s3: base URL of the object store, http(s)://HOST[:PORT]; objects are ENDPOINT/BUCKET/ab/cd/SHA256" },
	{ "blobs.bucket", CFG_STRING, NULL, 0, 0, 0,
	  "s3: the bucket (3-63 of a-z 0-9 . -); it must exist" },
	{ "blobs.region", CFG_STRING, "us-east-1", 0, 0, 0, "s3: region of the AWS Signature V4" },
	{ "blobs.credentials_file", CFG_STRING, NULL, 0, 0, 0,
	  "s3: file with aws_access_key_id = and aws_secret_access_key =; refused when others than root and group postroom can read it" },
	{ "blobs.timeout", CFG_INT, "30", 1, 600, 0,
	  "s3: seconds one request may take (connect at most 10); keep it below the MTA's time limit for deliver" },
	{ "blobs.min_size", CFG_SIZE, "65536", 0, 2048 * MiB, 0,
	  "s3: blobs smaller than this many bytes stay in PostgreSQL" },
	{ "blobs.gc_grace", CFG_INT, "7", 0, 36500, 0,
	  "days postroomctl blobs gc keeps an object after its last write and after its last reference went; restore no database backup older than this" },

	/* API keys */
	{ "apikey.bcrypt_cost", CFG_INT, "11", 4, 31, 0,
	  "bcrypt cost (log2 rounds) for newly created API keys" },

	/* mailbox: the lifecycle of stored mail (postroomctl mail purge) */
	{ "mailbox.trash_retention_days", CFG_INT, "30", 0, 36500, 0,
	  "days an email stays in a user's trash before postroomctl mail purge deletes it for good" },

	/* secrets shared by the daemons */
	{ "security.hmac_secret", CFG_STRING, NULL, 0, 0, CFG_SECRET,
	  "server secret for HMACs (auth cache keys, signed internal headers); at least 32 characters" },

	/* rules: the envelope rules every program applies the same way */
	{ "rules.mx_enabled", CFG_BOOL, "false", 0, 0, 0,
	  "accept unauthenticated mail for hosted domains on MX services; needs at least one hosted domain" },
	{ "rules.recipient_validation", CFG_BOOL, "true", 0, 0, 0,
	  "refuse unknown users at hosted domains (550 5.1.1) instead of accepting any local part" },
	{ "rules.sender_login_match", CFG_BOOL, "true", 0, 0, 0,
	  "an authenticated MAIL FROM must be one of the user's own addresses or <> (553 5.7.1)" },
	{ "rules.subaddress_delimiters", CFG_STRING, "+", 0, 0, 0,
	  "characters that start a sub-address (user+tag@domain is looked up as user@domain); empty: none" },
	{ "rules.port_roles", CFG_STRING,
	  "25=mx 587=submission 465=submission ORIGINATING=submission", 0, 0, 0,
	  "KEY=ROLE entries: KEY a port or service name, ROLE mx, submission or other; unlisted services are other" },
	{ "rules.internal_header_max_age", CFG_INT, "432000", 60, 31536000, 0,
	  "seconds a signed internal header stays valid; at least Postfix's maximal_queue_lifetime (5 days)" },
	{ "rules.sent_recipient", CFG_STRING, NULL, 0, 0, 0,
	  "envelope recipient the milter adds to authenticated submissions and lmtpd/deliver take as the sent-copy marker; unset: off" },
	{ "rules.postmaster_domain", CFG_STRING, NULL, 0, 0, 0,
	  "hosted domain whose postmaster receives mail to a bare <Postmaster> (RFC 5321 4.5.1); unset: left to the MTA" },
	{ "rules.postmaster_address", CFG_STRING, NULL, 0, 0, 0,
	  "address whose owner receives postmaster@DOMAIN of a hosted domain without a user or alias postmaster@DOMAIN" },
	{ "rules.storage_quota", CFG_BOOL, "true", 0, 0, 0,
	  "milter and policyd answer 452 4.2.2 at RCPT for a user at or over the storage quota (or SIZE= would cross it)" },
	{ "rules.suppression_per_domain", CFG_BOOL, "false", 0, 0, 0,
	  "a hard bounce or complaint suppresses the address for every user of the sender's domain, not the sender alone" },
	{ "rules.suppression_soft_count", CFG_INT, "3", 0, 1000, 0,
	  "soft bounces for one address within rules.suppression_soft_window that suppress it; 0: never" },
	{ "rules.suppression_soft_window", CFG_INT, "604800", 60, 31536000, 0,
	  "seconds in which rules.suppression_soft_count soft bounces suppress an address" },

	/* dkim: signing keys (postroomctl domain dkim, ctl/ctl_dkim.c) */
	{ "dkim.enabled", CFG_BOOL, "false", 0, 0, 0,
	  "this host signs for every hosted domain: config check fails for a domain without its active key here" },
	{ "dkim.key_dir", CFG_STRING, "/etc/postroom/dkim", 0, 0, 0,
	  "directory of the DKIM keys, KeyTable, SigningTable and signing.exim; must be closed to others" },
	{ "dkim.key_user", CFG_STRING, "opendkim", 0, 0, 0,
	  "owner of the private key files (mode 0600): the user the signer runs as" },
	{ "dkim.dns_server", CFG_STRING, NULL, 0, 0, 0,
	  "DNS server (ADDR or ADDR:PORT) for the rotation and domain checks; unset = the system resolver" },
};

const struct cfg_table conf_table_shared = {
	"shared", conf_params_shared, sizeof(conf_params_shared) / sizeof(conf_params_shared[0])
};

/* Every section a postroom.conf may hold. A new program's section is added
 * here as well as in its own table. */
const char *const conf_sections[] = {
	"database", "limits", "apikey", "security", "rules", "mailbox", "deliver",
	"lmtpd",    "authd",  "milter", "policyd",  "dkim",  "blobs",   "webhook",
};
const size_t conf_nsections = sizeof(conf_sections) / sizeof(conf_sections[0]);

/* Renamed parameters: the old name keeps working, with a warning from the
 * daemons and from postroomctl config check. */
const struct cfg_rename conf_renames[] = {
	{ "milter.sent_recipient", "rules.sent_recipient" },
};
const size_t conf_nrenames = sizeof(conf_renames) / sizeof(conf_renames[0]);
