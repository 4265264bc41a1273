/* deliver_params.h - the deliver section of postroom.conf (deliver_params.c) */
#ifndef POSTROOM_DELIVER_PARAMS_H
#define POSTROOM_DELIVER_PARAMS_H

#include "conf.h"

/* registered by postroom-deliver (and postroom-deliver-store, postroom-lmtpd) (conf_register) and
 * by postroomctl */
extern const struct cfg_table deliver_conf_table;

#endif
