/* lmtpd_params.h - the lmtpd section of postroom.conf (lmtpd_params.c) */
#ifndef POSTROOM_LMTPD_PARAMS_H
#define POSTROOM_LMTPD_PARAMS_H

#include "conf.h"

/* registered by postroom-lmtpd (conf_register) and by postroomctl */
extern const struct cfg_table lmtpd_conf_table;

#endif
