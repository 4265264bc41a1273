/* webhook_params.h - the webhook section of postroom.conf (webhook_params.c) */
#ifndef POSTROOM_WEBHOOK_PARAMS_H
#define POSTROOM_WEBHOOK_PARAMS_H

#include "conf.h"

/* registered by postroom-webhookd (conf_register) and by postroomctl */
extern const struct cfg_table webhook_conf_table;

#endif
