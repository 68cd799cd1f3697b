/* ferry-worker's run command: start the pieces, consume until SIGTERM, stop them.
 * worker_main.c parses the command line; tests link this file through the ferry_worker
 * library. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_kafka.h"
#include "ferry_limiter.h"
#include "ferry_log.h"
#include "worker.h"
#include "worker_health.h"
#include "worker_http.h"
#include "worker_metrics.h"

const ferry_conf_def worker_conf_defs[] = {
    {"worker.id", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Identity in logs, leases and DLQ records (default: hostname-pid)"},
    {"worker.group", FERRY_CONF_STR, "ferry-workers", 0, 0, 0, "Kafka consumer group"},
    {"worker.concurrency", FERRY_CONF_INT, "2", 1, 256, 0,
     "Migrations run in parallel by this process"},
    {"copy.max_in_flight", FERRY_CONF_INT, "256", 1, 1024, 0,
     "Ceiling of the S3 requests in flight per endpoint and process; the limit adapts below "
     "it to the store's latency and 503 SlowDown, shared fairly by the migrations"},
    {"copy.min_in_flight", FERRY_CONF_INT, "4", 1, 1024, 0,
     "Floor of the adaptive in-flight limit (per endpoint and process)"},
    {"copy.initial_in_flight", FERRY_CONF_INT, "16", 1, 1024, 0,
     "Where the adaptive in-flight limit starts before it has measured the store"},
    {"copy.page_size", FERRY_CONF_INT, "1000", 1, 1000, 0, "Keys per ListObjectsV2 page"},
    {"copy.multipart_threshold_mb", FERRY_CONF_INT, "5120", 5, 5120, 0,
     "Objects larger than this are copied with UploadPartCopy (S3's CopyObject limit is 5 GiB)"},
    {"copy.multipart_part_size_mb", FERRY_CONF_INT, "256", 5, 5120, 0,
     "Part size for multipart copies (raised to stay within 10,000 parts)"},
    {"copy.stream_checksums", FERRY_CONF_BOOL, "true", 0, 0, 0,
     "Across endpoints, keep the source's checksum: with each PutObject its full-object "
     "value (x-amz-checksum-*), with each UploadPart the part's, computed while streaming, "
     "as an aws-chunked trailer; the target checks the bytes and keeps the algorithm (off "
     "for a target that refuses those headers or trailers)"},
    {"copy.max_requests_per_second", FERRY_CONF_INT, "0", 0, 1000000, 0,
     "Pace S3 requests per migration (0 = as fast as max_in_flight allows)"},
    {"copy.request_retries", FERRY_CONF_INT, "4", 0, 100, 0,
     "Retry a failed S3 request (5xx, SlowDown, reset) this often within a page before the "
     "attempt fails"},
    {"copy.max_failed_objects", FERRY_CONF_INT, "1000", 0, 1000000000LL, 0,
     "A dataset with more objects failing on their own (403 on a key, archived, ...) than "
     "this fails as a whole, with their class (0: no limit)"},
    {"copy.max_failed_percent", FERRY_CONF_INT, "0", 0, 100, 0,
     "Also fail the dataset when more than this percentage of its objects failed (checked "
     "from 100 objects on; 0: off)"},
    {"report.bucket", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Also write each failure report as JSON lines to this bucket on the target endpoint "
     "(unset: the report is in Redis only)"},
    {"report.prefix", FERRY_CONF_STR, "ferry-reports/", 0, 0, 0,
     "Key prefix of report objects: <prefix><dataset>/<event_id>.jsonl"},
    {"s3.outage_limit_ms", FERRY_CONF_INT, "900000", 0, 604800000LL, 0,
     "Wait this long for an S3 endpoint that is down (its circuit breaker open) before "
     "dead-lettering the migrations that need it, class s3-outage (0: wait forever)"},
    {"s3.stall_timeout_ms", FERRY_CONF_INT, "30000", 1000, 3600000, 0,
     "A request that neither sends nor receives a byte this long is abandoned as stalled "
     "and the endpoint treated as down"},
    {"s3.breaker_failures", FERRY_CONF_INT, "5", 1, 1000, 0,
     "Consecutive endpoint failures (refused, reset, timeout, 5xx other than throttling) "
     "that open an endpoint's circuit breaker"},
    {"s3.probe_max_ms", FERRY_CONF_INT, "30000", 1000, 3600000, 0,
     "Longest wait between probes of an S3 endpoint that is down (from 1 s, doubling)"},
    {"copy.checkpoint_interval_ms", FERRY_CONF_INT, "1000", 0, 600000, 0,
     "Write the checkpoint at most this often while a page is copied"},
    {"fanout.min_objects", FERRY_CONF_INT, "100000", 0, 1000000000000LL, 0,
     "Split a dataset with more objects than this into chunk events (0: never)"},
    {"fanout.copy_before_count", FERRY_CONF_INT, "10000", 0, 1000000000000LL, 0,
     "A new dataset is copied at once, without the count that decides the split; only once "
     "the copy has listed more keys than this is it counted (and split if above "
     "fanout.min_objects). 0: count first"},
    {"fanout.chunk_objects", FERRY_CONF_INT, "10000", 10, 1000000000LL, 0,
     "Objects per chunk when splitting by keys"},
    {"fanout.delimiter", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Split by the common prefixes (\"directories\") this delimiter (e.g. /) makes under "
     "the dataset's prefix, when there are at least two, instead of walking every key; "
     "for prefixes of similar size. Unset: split by keys"},
    {"lease.ttl_ms", FERRY_CONF_INT, "30000", 1000, 3600000, 0,
     "Lease lifetime; renewed every third of it"},
    {"retry.max_attempts", FERRY_CONF_INT, "6", 1, 1000, 0,
     "Attempts for a retryable failure before the event is dead-lettered"},
    {"retry.max_elapsed_ms", FERRY_CONF_INT, "900000", 0, 86400000, 0,
     "Dead-letter a retryable failure that keeps failing for longer than this"},
    {"notify.webhook_url", FERRY_CONF_STR, NULL, 0, 0, 0,
     "POST a JSON notice here after each migration (optional)"},
    {"notify.webhook_token_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Bearer token for the webhook, read from this file"},
    {"notify.webhook_ca_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "CA bundle that verifies an https webhook (default: the system's CAs)"},
    {"notify.webhook_attempts", FERRY_CONF_INT, "5", 1, 100, 0, "Webhook attempts"},
    {"retry.base_ms", FERRY_CONF_INT, "500", 1, 600000, 0, "First backoff ceiling"},
    {"retry.max_ms", FERRY_CONF_INT, "30000", 1, 3600000, 0, "Largest backoff ceiling"},
    {"http.listen", FERRY_CONF_STR, NULL, 0, 0, 0,
     "ADDR:PORT serving /metrics, /healthz, /readyz and the status page (unset: none)"},
    {"shutdown.timeout_ms", FERRY_CONF_INT, "30000", 0, 3600000, 0,
     "After SIGTERM, leave the group within this long"},
    {NULL, 0, NULL, 0, 0, 0, NULL}};

static worker *the_worker;

static void on_signal(int sig)
{
    static const char msg[] = "second signal: exiting now (checkpoints are kept)\n";
    if (the_worker && atomic_exchange(&the_worker->stopping, 1)) {
        if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        }
        _exit(128 + sig);
    }
}

int worker_run(const ferry_conf *conf, const char *id, int *abandoned)
{
    worker w = {0};
    worker_http *http = NULL;
    char errstr[512];
    int exit_code = FERRY_EXIT_USAGE, lease_rc = 0;
    struct sigaction sa;

    *abandoned = 0;
    ferry_log_set_worker(id);
    snprintf(w.id, sizeof(w.id), "%s", id);
    w.conf = conf;
    w.topics[0] = ferry_conf_str(conf, "topic.onboard");
    w.topics[1] = ferry_conf_str(conf, "topic.chunks");
    w.nthreads = (int)ferry_conf_int(conf, "worker.concurrency");
    atomic_init(&w.stopping, 0);
    the_worker = &w;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    if (worker_metrics_init() != 0)
        ferry_warn(NULL, "out of memory creating the metrics; running without some");
    if (worker_health_init(conf) != 0) {
        ferry_err(NULL, "out of memory creating the S3 endpoint breakers");
        exit_code = FERRY_EXIT_FAILURE;
        goto out;
    }
    /* Early, so /healthz answers while the rest starts (/readyz says what is missing). */
    if (worker_http_start(&w, &http, errstr, sizeof(errstr)) != 0) {
        ferry_err(NULL, "http.listen: %s", errstr);
        goto out;
    }
    exit_code = FERRY_EXIT_FAILURE;
    if (!(w.producer = ferry_kafka_producer_new(conf, errstr, sizeof(errstr)))) {
        ferry_err(NULL, "creating the producer: %s", errstr);
        goto out;
    }
    /* The producer's topics, known from the start: librdkafka 2.0 looks up a topic it has
     * not seen only on its 1 s topic scan, so every worker's first DatasetMigrated, dead
     * letter and chunk event waited up to 1 s (32 datasets on 8 workers: 0.6 s lost per
     * worker). A handle kept keeps the topic's metadata refreshed. */
    {
        const char *names[3] = {"topic.migrated", "topic.dlq", "topic.chunks"};
        for (int i = 0; i < 3; i++)
            w.ahead[i] = rd_kafka_topic_new(w.producer, ferry_conf_str(conf, names[i]), NULL);
    }
    {
        ferry_limiter_conf lc;
        ferry_limiter_conf_init(&lc);
        lc.max_limit = (int)ferry_conf_int(conf, "copy.max_in_flight");
        lc.min_limit = (int)ferry_conf_int(conf, "copy.min_in_flight");
        if (lc.min_limit > lc.max_limit)
            lc.min_limit = lc.max_limit; /* a low ceiling alone fixes the limit */
        lc.initial_limit = (int)ferry_conf_int(conf, "copy.initial_in_flight");
        if (!(w.limiters = ferry_limiters_new(&lc))) {
            ferry_err(NULL, "out of memory");
            goto out;
        }
    }
    if ((lease_rc = worker_lease_start(&w, errstr, sizeof(errstr))) != 0 ||
        worker_pool_start(&w, errstr, sizeof(errstr)) != 0) {
        ferry_err(NULL, "starting: %s", errstr);
        if (lease_rc == -2)
            exit_code = FERRY_EXIT_USAGE; /* a configuration error, like a bad setting */
        atomic_store(&w.stopping, 1);
        worker_pool_stop(&w);
        worker_lease_stop(&w);
        goto out;
    }
    ferry_info(NULL, "worker %s started: %d migration thread(s)", w.id, w.nthreads);
    exit_code = worker_consume_run(&w);
    if (w.inflight > 0) {
        /* Deadline passed with migrations still winding down: their checkpoints are in
         * Redis and their offsets were not stored, so exiting now loses nothing; their
         * threads still use everything below, so nothing is torn down. */
        ferry_log_write(FERRY_LOG_WARN, NULL, "exiting with migrations still stopping");
        *abandoned = 1;
        return FERRY_EXIT_FAILURE;
    }
    worker_pool_stop(&w);
    worker_lease_stop(&w);
    ferry_info(NULL, "worker %s stopped", w.id);
out:
    worker_http_stop(http);  /* before the metrics it serves */
    worker_health_destroy(); /* after the migration threads, before the metrics */
    worker_metrics_destroy();
    for (int i = 0; i < 3; i++)
        if (w.ahead[i])
            rd_kafka_topic_destroy(w.ahead[i]);
    if (w.producer && ferry_kafka_producer_destroy(w.producer, 10000) > 0)
        ferry_warn(NULL, "some notifications were not delivered before exit");
    free(w.parts);
    ferry_limiters_destroy(w.limiters); /* after the pool: its stores borrowed them */
    the_worker = NULL;
    return exit_code;
}
