/*
 * NAME
 *	null-milter - a milter that does nothing, on postroom-milter's terms
 * SYNOPSIS
 *	null-milter SOCKET
 * DESCRIPTION
 *	The floor of bench/milter-bench (issue 23): the same libmilter as
 *	postroom-milter, registered with the same flags (add and change
 *	headers, add and delete recipients, set the macro list), the same
 *	callbacks present, the same protocol steps negotiated (no connect,
 *	HELO, unknown, DATA or end-of-header steps; no reply to the connect,
 *	header and body steps; header values with their leading space), the
 *	same macros asked for with smfi_setsymlist, the same timeout (300 s)
 *	and worker stack size (1 MB). Every callback only answers: CONTINUE,
 *	or NOREPLY where that step was negotiated without a reply (as
 *	postroom-milter answers there). What postroom-milter costs beyond
 *	this program is what postroom adds; what this program costs beyond
 *	bare Postfix is libmilter's and Postfix's milter client's.
 *	SOCKET is a libmilter socket spec (unix:/path, inet:PORT@HOST); the
 *	program runs in the foreground until SIGTERM. Built by
 *	bench/milter-bench with cc ... -lmilter.
 * NEVER
 *	changes, refuses or delays a message.
 */
#define _GNU_SOURCE /* pthread_setattr_default_np */
#include <libmilter/mfapi.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

/* the protocol steps postroom-milter negotiates (milter/callbacks.c) */
#define NULL_PROTO                                                                             \
	(SMFIP_HDR_LEADSPC | SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOUNKNOWN | SMFIP_NODATA | \
	 SMFIP_NOEOH | SMFIP_NR_CONN | SMFIP_NR_HDR | SMFIP_NR_BODY)
#define NULL_EDIT (SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_ADDRCPT | SMFIF_DELRCPT)

/* the steps negotiated (the same for every connection from one MTA) */
static unsigned long null_proto;

/* null_answer - NOREPLY for a step negotiated without a reply */
static sfsistat null_answer(unsigned long flag)
{
	return (__atomic_load_n(&null_proto, __ATOMIC_RELAXED) & flag) ? SMFIS_NOREPLY
								       : SMFIS_CONTINUE;
}

static sfsistat null_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
			       unsigned long f3, unsigned long *pf0, unsigned long *pf1,
			       unsigned long *pf2, unsigned long *pf3)
{
	(void)f2;
	(void)f3;
	*pf0 = f0 & (NULL_EDIT | SMFIF_SETSYMLIST);
	*pf1 = f1 & NULL_PROTO;
	*pf2 = *pf3 = 0;
	__atomic_store_n(&null_proto, *pf1, __ATOMIC_RELAXED);
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_CONNECT, "j {daemon_name} {daemon_port} {client_addr}");
		smfi_setsymlist(ctx, SMFIM_ENVFROM, "i {auth_authen}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

static sfsistat null_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)ctx;
	(void)host;
	(void)sa;
	return null_answer(SMFIP_NR_CONN);
}

static sfsistat null_envelope(SMFICTX *ctx, char **argv)
{
	(void)ctx;
	(void)argv;
	return SMFIS_CONTINUE;
}

static sfsistat null_header(SMFICTX *ctx, char *name, char *value)
{
	(void)ctx;
	(void)name;
	(void)value;
	return null_answer(SMFIP_NR_HDR);
}

static sfsistat null_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)ctx;
	(void)chunk;
	(void)len;
	return null_answer(SMFIP_NR_BODY);
}

static sfsistat null_step(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

static struct smfiDesc null_desc = {
	"null-milter",  SMFI_VERSION,  NULL_EDIT | SMFIF_SETSYMLIST,
	null_connect,   NULL, /* helo */
	null_envelope,  null_envelope, null_header,
	NULL,                      /* eoh */
	null_body,      null_step, /* eom */
	null_step,                 /* abort */
	null_step,                 /* close */
	NULL,                      /* unknown */
	NULL,                      /* data */
	null_negotiate,
};

int main(int argc, char **argv)
{
	pthread_attr_t attr;

	if (argc != 2) {
		fprintf(stderr, "usage: null-milter SOCKET\n");
		return 64;
	}
	if (smfi_register(null_desc) != MI_SUCCESS || smfi_setconn(argv[1]) != MI_SUCCESS ||
	    smfi_settimeout(300) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: cannot register on %s\n", argv[1]);
		return 70;
	}
	umask(0111); /* a unix socket any local user may connect to */
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "null-milter: cannot open %s\n", argv[1]);
		return 69;
	}
	if (pthread_attr_init(&attr) == 0) {
		pthread_attr_setstacksize(&attr, 1024 * 1024);
		pthread_setattr_default_np(&attr);
		pthread_attr_destroy(&attr);
	}
	fprintf(stderr, "null-milter: started on %s\n", argv[1]);
	return smfi_main() == MI_SUCCESS ? 0 : 70;
}
