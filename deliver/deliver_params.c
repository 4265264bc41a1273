/*
 * NAME
 *	deliver_params - the deliver section of postroom.conf
 * DESCRIPTION
 *	Every deliver.* parameter, declared once: name, type, default, bounds,
 *	flags, one line of documentation. postroom-deliver,
 *	postroom-deliver-store and postroom-lmtpd register this table before
 *	they load the file; postroomctl registers it to list and check every
 *	parameter. doc/postroom.conf.5 documents each row
 *	(tests/unit/test-config-doc.sh).
 * NEVER
 *	declares a parameter of another section.
 */
#include "conf.h"
#include "deliver_params.h"

static const struct cfg_param deliver_params[] = {
	{ "deliver.conninfo", CFG_STRING, NULL, 0, 0, CFG_SECRET_PW,
	  "postroom-deliver's libpq connection string: a login role in group PREFIXdeliver; unset = database.conninfo" },
	{ "deliver.notify_url", CFG_STRING, NULL, 0, 0, 0,
	  "URL the new-email notification is POSTed to after commit (e.g. https://app/api/internal/notifications/new-email); unset: no HTTP notification" },
	{ "deliver.notify_key", CFG_STRING, NULL, 0, 0, CFG_SECRET,
	  "internal API key sent as \"Authorization: ApiKey <key>\" with the notification" },
	{ "deliver.notify_connect_timeout", CFG_INT, "2", 1, 60, 0,
	  "seconds to wait for the notification endpoint to accept the connection" },
	{ "deliver.notify_timeout", CFG_INT, "5", 1, 120, 0,
	  "seconds one notification request may take in all; a timeout is not retried (a refused connection or a 5xx answer is, once)" },
	{ "deliver.timeout", CFG_INT, "300", 10, 3600, 0,
	  "seconds a delivery may take before it gives up with a temporary failure; keep it below Postfix's command_time_limit" },
	{ "deliver.trusted_authserv_id", CFG_STRING, NULL, 0, 0, 0,
	  "authserv-id of this site's OpenDKIM/OpenDMARC (incoming A-R with it removed on receipt, OpenDKIM KeepAuthResults no): their Authentication-Results above the second Received: are stored (emails.auth_results); unset: none count" },
	{ "deliver.dmarc_spam_policies", CFG_STRING, "reject quarantine", 0, 0, 0,
	  "DMARC policies (space-separated: none, quarantine, reject) under which a trusted dmarc=fail stores the message as spam (spam_reason dmarc=fail(p=...)); \"\": never; dkim=fail alone never is" },
	{ "deliver.lmtpd_socket", CFG_STRING, NULL, 0, 0, 0,
	  "path of postroom-lmtpd's unix socket: postroom-deliver hands each message to it over LMTP (pooled connections, no libpq start-up); unset: it stores directly" },
};

const struct cfg_table deliver_conf_table = { "postroom-deliver", deliver_params,
					      sizeof(deliver_params) / sizeof(deliver_params[0]) };
