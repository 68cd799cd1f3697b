#ifndef FERRY_WORKER_STATUS_H
#define FERRY_WORKER_STATUS_H

#include "ferry_conf.h"

/* `ferry-worker status`: every migration in Redis with progress, rate and ETA.
 * Returns an exit code. */
int worker_status_main(const ferry_conf *conf, int watch, int json);

#endif
