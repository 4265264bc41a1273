/* ctl_suppression.h - postroomctl suppression, and the bounce facts of
 * mail show (ctl/ctl_suppression.c, issue 21). */
#ifndef POSTROOM_CTL_SUPPRESSION_H
#define POSTROOM_CTL_SUPPRESSION_H

#include "ctl.h"

/* ctl_cmd_suppression - suppression list|add|remove */
int ctl_cmd_suppression(struct ctl *ctl, int argc, char **argv);
/* ctl_report_add_json - set "class" (ordinary without a report), "report"
 * (rule, original_message_id, recipients; bounces, complaints and
 * auto-replies only) and "reports" (those linked to email id as the sent
 * email) on the email object */
void ctl_report_add_json(struct ctl *ctl, const char *id, json_t *email);

#endif
