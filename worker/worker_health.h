/* The health of the S3 endpoints this process talks to: one circuit breaker
 * (ferry_breaker) per endpoint, shared by every migration thread, fed with the outcome of
 * each request, and the wait a migration does at an object boundary while an endpoint it
 * needs is down. An endpoint outage is not the event's fault: migrations keep their
 * leases and are not charged attempts while they wait; only an outage longer than
 * s3.outage_limit_ms fails them (class s3-outage, to the DLQ).
 *
 * Process-wide, like worker_metric: worker_health_init() runs in main() before any
 * migration thread starts and worker_health_destroy() after they all stopped. Before init
 * (the status command, tools) there are no breakers and nothing waits. */
#ifndef WORKER_HEALTH_H
#define WORKER_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_breaker.h"
#include "ferry_conf.h"
#include "ferry_error.h"
#include "ferry_log.h"

/* Creates the breakers of s3.endpoint and s3.target.endpoint and their metrics. 0, or -1
 * when out of memory. */
int worker_health_init(const ferry_conf *conf);
void worker_health_destroy(void);

/* The breaker of endpoint (as configured), or NULL if there is none. */
ferry_breaker *worker_health_breaker(const char *endpoint);

/* 1 if a failed request is the endpoint's fault rather than the object's or the
 * dataset's: refused, reset, timed out, stalled, or a 5xx that is not throttling (503
 * SlowDown says the endpoint works and wants less: that is the in-flight limit's
 * business). s3_code may be NULL (then the message is searched for the throttling
 * codes S3 quotes). */
int worker_health_endpoint_failure(ferry_rc rc, const ferry_error *err, const char *s3_code);

/* Feeds one request's outcome to b (NULL: nothing): an answer, or an endpoint failure.
 * Logs an opening at warn (once per outage) and a recovery at info. CANCELLED is no
 * outcome. */
void worker_health_note(ferry_breaker *b, ferry_rc rc, const ferry_error *err,
                        const char *s3_code, const ferry_log_ctx *lctx);

/* Sends one cheap request to the endpoint of b (e.g. HEAD bucket) and returns its rc. */
typedef ferry_rc (*worker_health_probe_fn)(void *opaque, ferry_breaker *b, ferry_error *err);

/* Waits while b (NULL: none) is not closed, probing it when its probe is due. FERRY_OK
 * once closed; FERRY_ERR_CANCELLED when should_stop(stop_opaque) says stop; PERMANENT
 * s3-outage once it has been down longer than s3.outage_limit_ms (0: no limit). */
ferry_rc worker_health_wait(ferry_breaker *b, worker_health_probe_fn probe, void *probe_opaque,
                            int (*should_stop)(void *), void *stop_opaque,
                            const ferry_log_ctx *lctx, ferry_error *err);

/* 1 if every endpoint's breaker is closed; msg gets a line per endpoint that is not
 * ("http://host:port open for 12 s, stalled: <last error>") or the endpoints checked. */
int worker_health_describe(char *msg, size_t size);

#endif
