/* lmtpd.h - what the parts of postroom-lmtpd share: the settings (swapped
 * on SIGHUP, reference-counted), the server state and the session. */
#ifndef POSTROOM_LMTPD_H
#define POSTROOM_LMTPD_H

#include <pthread.h>
#include <stddef.h>

#include "buf.h"
#include "conf.h"
#include "lmtpd_group.h"
#include "lmtpd_pool.h"
#include "lmtpd_proto.h"
#include "store_notify.h"

#define LMTPD_PROG		"postroom-lmtpd"
#define LMTPD_RCPTS_MAX		1000
#define LMTPD_IN_SIZE		65536

/* The settings a transaction uses; a SIGHUP makes new ones, and a
 * transaction keeps the ones it started with. */
struct lmtpd_settings {
	struct conf *cfg;
	int refs;
	long long size_max, attachment_max;
	int recipient_validation;
	const char *subaddress_delims;
	long header_max_age;
	const char *hmac_secret;
	const char *authserv_id;
	const char *sent_recipient;	/* milter.sent_recipient, or NULL */
	const char *trusted_clients;
	int timeout;
	size_t group_commit;		/* messages in one transaction at most */
	struct store_notify_conf notify;
};

/* lmtpd_settings_load - settings from cfg (taken over); NULL with
 * *error_r (caller frees) on a bad value */
struct lmtpd_settings *lmtpd_settings_load(struct conf *cfg, char **error_r);
/* lmtpd_settings_get - the current settings, one more reference */
struct lmtpd_settings *lmtpd_settings_get(void);
/* lmtpd_settings_put - drop a reference (frees the last) */
void lmtpd_settings_put(struct lmtpd_settings **s);
/* lmtpd_settings_install - make s current (the server holds a reference) */
void lmtpd_settings_install(struct lmtpd_settings *s);
/* lmtpd_trusted_addr - is the TCP client address in lmtpd.trusted_clients? */
int lmtpd_trusted_addr(const struct lmtpd_settings *s, const char *addr);

struct lmtpd_server {
	struct lmtpd_pool *pool;
	struct lmtpd_group *group;	/* group commit over the pool */
	char hostname[256];
	int max_sessions;
	volatile int stopping;		/* SIGTERM: finish transactions, 421 new ones */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	int nsessions;
	struct metric *m_sessions, *m_messages_ok, *m_messages_temp, *m_messages_perm,
		      *m_bytes, *m_duration, *m_rcpts;
};

/* One LMTP connection. */
struct lmtpd_session {
	struct lmtpd_server *srv;
	int fd;
	int trusted;		/* may use AUTH=, XFORWARD, X-POSTROOM-SENT */
	char id[24];		/* for the log */
	char peer[64];
	char in[LMTPD_IN_SIZE];
	size_t in_start, in_end;
	struct buf out;
	int lhlo;
	/* the transaction */
	int have_mail;
	char *sender;
	char *auth_user;
	char *rcpts[LMTPD_RCPTS_MAX];
	int rcpt_sent[LMTPD_RCPTS_MAX];	/* the sent-copy route marker */
	size_t nrcpts;
	char *xf_addr, *xf_ident;	/* XFORWARD ADDR= and IDENT= */
};

/* lmtpd_session_spawn - serve fd on a thread of its own (detached);
 * the session closes fd */
void lmtpd_session_spawn(struct lmtpd_server *srv, int fd, int trusted, const char *peer);

/* lmtpd_session_reply - queue a reply line (CRLF added) */
void lmtpd_session_reply(struct lmtpd_session *s, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* lmtpd_rcpt_lookup - RCPT-time validation: 0 known (or validation
 * off), 1 unknown, -1 database trouble (*error_r, caller frees) */
int lmtpd_rcpt_lookup(struct lmtpd_session *s, const struct lmtpd_settings *set,
		      const char *rcpt, char **error_r);

/* lmtpd_data - read the message after "354" and give one reply per
 * accepted recipient; -1 when the connection is lost (nothing stored) */
int lmtpd_data(struct lmtpd_session *s);

/* lmtpd_session_fill - read more input, waiting at most timeout
 * seconds: 1 read, 0 end of input, -1 error or timeout, -2 the server
 * is stopping (only when interruptible) */
int lmtpd_session_fill(struct lmtpd_session *s, int timeout, int interruptible);
/* lmtpd_session_flush - send the queued replies; 0 or -1 */
int lmtpd_session_flush(struct lmtpd_session *s);

#endif
