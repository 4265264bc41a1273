/* policyd_params.h - the policyd section of postroom.conf (policyd_params.c) */
#ifndef POSTROOM_POLICYD_PARAMS_H
#define POSTROOM_POLICYD_PARAMS_H

#include "conf.h"

/* registered by postroom-policyd (conf_register) and by postroomctl */
extern const struct cfg_table policyd_conf_table;

#endif
