/* authd_params.h - the authd section of postroom.conf (authd_params.c) */
#ifndef POSTROOM_AUTHD_PARAMS_H
#define POSTROOM_AUTHD_PARAMS_H

#include "conf.h"

/* registered by postroom-authd (conf_register) and by postroomctl */
extern const struct cfg_table authd_conf_table;

#endif
