/* received.h - the queue id in the Received: header Postfix adds.
 *
 * Postfix's local(8) exports no queue id to mailbox_command (3.7 has no
 * QUEUE_ID variable), but every way into Postfix's queue writes a
 * Received: header above the message, with the id:
 *   smtpd:  from HELO (NAME [ADDR]) by HOST (Postfix) with ESMTP id QID ...
 *   pickup: by HOST (Postfix, from userid N) id QID; DATE
 * A sender can write any Received: header into a message, but only below
 * that one: the topmost is what this host added. The id read from it is
 * for the log line and the verdict binding (lib/verdict.c), where a wrong
 * id can only make a verdict not count; it is never trusted for more. */
#ifndef POSTROOM_RECEIVED_H
#define POSTROOM_RECEIVED_H

#include <stddef.h>

#include "verdict.h"

/* Longest queue id taken (Postfix: 10-12 hex digits, long ids about 15
 * characters). */
#define RECEIVED_QID_MAX 40

/* received_queue_id - the id of one Received: header value (unfolded or
 * folded, without "Received:") of Postfix's form "by HOST (NAME[, from
 * userid N]) [with PROTO] id QID", QID alphanumeric, 5 to
 * RECEIVED_QID_MAX characters; copied into buf (size bytes, NUL ended).
 * 0 ok; -1 when the value is not of that form or the id does not fit. */
int received_queue_id(const char *value, char *buf, size_t size);

/* received_top_queue_id - received_queue_id of the topmost Received:
 * header of n headers (message order, index 0 topmost); -1 when there is
 * none or it is not Postfix's. A lower Received: header is never used. */
int received_top_queue_id(const struct verdict_header *h, size_t n, char *buf, size_t size);

#endif
