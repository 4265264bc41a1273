/* milter_params.h - the milter section of postroom.conf (milter_params.c) */
#ifndef POSTROOM_MILTER_PARAMS_H
#define POSTROOM_MILTER_PARAMS_H

#include "conf.h"

/* registered by postroom-milter (conf_register) and by postroomctl */
extern const struct cfg_table milter_conf_table;

#endif
