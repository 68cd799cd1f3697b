/* The worker's HTTP listener (http.listen / --http ADDR:PORT; none unless set):
 *   GET /metrics         Prometheus text (worker_metrics.h)
 *   GET /healthz         200 "ok" while the process runs (liveness)
 *   GET /readyz          200 when the consumer is in its group, Kafka has a broker up,
 *                        Redis answers PING and the S3 endpoint(s) answer HTTP; 503 and a
 *                        JSON body naming the failed checks otherwise
 *   GET /, /status       the status page (worker/web/, embedded at build time)
 *   GET /v1/migrations   what `ferry-worker status --json` shows, plus this process's
 *                        DLQ and failure counters, as one JSON object
 * No authentication: bind it to loopback or the pod network. Nothing it serves holds a
 * secret (Redis is described as host:port/db, S3 endpoints are never echoed). */
#ifndef WORKER_HTTP_H
#define WORKER_HTTP_H

#include <stddef.h>

#include "worker.h"

typedef struct worker_http worker_http;

/* Starts the listener if http.listen is set; *out stays NULL if it is not. Returns 0, or
 * -1 + errstr (bad address, address in use). Call from main() before the poll loop. */
int worker_http_start(worker *w, worker_http **out, char *errstr, size_t errstr_size);
/* Stops serving (waits for requests in flight) and frees. NULL-safe. */
void worker_http_stop(worker_http *h);

/* Readiness inputs, from the poll thread (any thread may call them). */
void worker_http_note_joined(int joined);    /* 1: assignment received; 0: lost */
void worker_http_note_kafka_brokers(int up); /* brokers UP in the last statistics */

#endif
