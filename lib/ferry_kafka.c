#include "ferry_kafka.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "ferry_log.h"
#include "ferry_util.h"

typedef struct apply_ctx {
    rd_kafka_conf_t *kconf;
    char *errstr;
    size_t errstr_size;
    int failed;
} apply_ctx;

static void apply_prop(const char *prop, const char *value, void *opaque)
{
    apply_ctx *a = opaque;
    if (a->failed)
        return;
    if (rd_kafka_conf_set(a->kconf, prop, value, a->errstr, a->errstr_size) != RD_KAFKA_CONF_OK)
        a->failed = 1;
}

/* How librdkafka's connection errors are reported in this process (see the header). */
static atomic_int one_shot;
static pthread_mutex_t conn_lock = PTHREAD_MUTEX_INITIALIZER;
static char last_cause[256];     /* the last connection failure, cleaned (conn_lock) */
static int64_t conn_logged_ms;   /* when the last one was logged (conn_lock) */
static unsigned conn_suppressed; /* left out since then (conn_lock) */

#define CONN_LOG_INTERVAL_MS 10000

void ferry_kafka_set_one_shot(int on) { atomic_store(&one_shot, on ? 1 : 0); }

/* "127.0.0.1:1/bootstrap: Connect to ipv4#127.0.0.1:1 failed: Connection refused (after
 * 0ms in state CONNECT, 2 identical error(s) suppressed)" -> "Connection refused": the
 * cause without the parts that change from one attempt to the next. */
static void clean_cause(const char *buf, char *out, size_t size)
{
    const char *s = buf, *p, *end;

    if ((p = strstr(s, "/bootstrap: ")) || (p = strstr(s, "]: ")))
        s = strchr(p, ' ') + 1;
    if ((p = strstr(s, " failed: ")))
        s = p + strlen(" failed: ");
    end = strstr(s, " (after ");
    if (!end)
        end = s + strlen(s);
    snprintf(out, size, "%.*s", (int)(end - s), s);
}

/* A connection failure: remembered for ferry_kafka_unreachable; logged at debug level in
 * a one-shot command, else at error level at most once per CONN_LOG_INTERVAL_MS. */
static void conn_failure(const char *fac, const char *buf)
{
    int64_t now = ferry_mono_ms();
    unsigned suppressed = 0;
    int log_it = 0;

    pthread_mutex_lock(&conn_lock);
    /* "1/1 brokers are down" says less than the failure before it */
    if (!strstr(buf, "brokers are down") || !last_cause[0])
        clean_cause(buf, last_cause, sizeof(last_cause));
    if (!atomic_load(&one_shot)) {
        if (!conn_logged_ms || now - conn_logged_ms >= CONN_LOG_INTERVAL_MS) {
            log_it = 1;
            suppressed = conn_suppressed;
            conn_suppressed = 0;
            conn_logged_ms = now;
        } else {
            conn_suppressed++;
        }
    }
    pthread_mutex_unlock(&conn_lock);
    if (atomic_load(&one_shot))
        ferry_debug(NULL, "librdkafka %s: %s", fac, buf);
    else if (log_it && suppressed)
        ferry_err(NULL, "librdkafka %s: %s (%u similar in the last %d s not shown)", fac, buf,
                  suppressed, CONN_LOG_INTERVAL_MS / 1000);
    else if (log_it)
        ferry_err(NULL, "librdkafka %s: %s", fac, buf);
}

static int is_conn_error(rd_kafka_resp_err_t e)
{
    return e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN ||
           e == RD_KAFKA_RESP_ERR__RESOLVE || e == RD_KAFKA_RESP_ERR__AUTHENTICATION ||
           e == RD_KAFKA_RESP_ERR__SSL;
}

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    ferry_log_level lvl = level <= LOG_ERR       ? FERRY_LOG_ERROR
                          : level == LOG_WARNING ? FERRY_LOG_WARN
                          : level <= LOG_INFO    ? FERRY_LOG_INFO
                                                 : FERRY_LOG_DEBUG;
    (void)rk;
    /* -X properties go to every handle (as with kcat), so a consumer property reaching
     * the producer (or the reverse) is expected, not worth a warning. */
    if (!strcmp(fac, "CONFWARN") && strstr(buf, "will be ignored by this"))
        lvl = FERRY_LOG_DEBUG;
    /* FAIL: a broker connection failed; the same failure reaches error_cb, which counts it */
    if (!strcmp(fac, "FAIL")) {
        conn_failure(fac, buf);
        return;
    }
    FERRY_LOG(lvl, NULL, "librdkafka %s: %s", fac, buf);
}

/* A broker that rejects the credentials, or a broker certificate that does not verify,
 * is a configuration error that no retry fixes (librdkafka would retry forever): say
 * which and exit 2, like any other invalid configuration. Nothing is lost: offsets are
 * stored only after an event is finished, so a restarted (fixed) process gets the same
 * events again. Errors that are really the network (a connection dropped during the SASL
 * exchange or the handshake: "Local: Broker transport failure") are not fatal. error_cb
 * runs on the thread that polls, inside librdkafka, hence _exit after the log line. */
static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__AUTHENTICATION && !strstr(reason, "Local: ")) {
        ferry_err(NULL,
                  "kafka: SASL authentication failed (check kafka.sasl.username and "
                  "kafka.sasl.password_file): %s",
                  reason);
    } else if (err == RD_KAFKA_RESP_ERR__SSL && strstr(reason, "certificate")) {
        ferry_err(NULL,
                  "kafka: TLS handshake with the broker failed (check "
                  "kafka.ssl.ca.location and the broker's certificate): %s",
                  reason);
    } else if (is_conn_error((rd_kafka_resp_err_t)err)) {
        conn_failure("ERROR", reason);
        return;
    } else {
        ferry_err(NULL, "librdkafka ERROR: %s: %s", rd_kafka_err2name((rd_kafka_resp_err_t)err),
                  reason);
        return;
    }
    fflush(NULL);
    _exit(2);
}

/* kafka.sasl.password_file -> sasl.password; the buffer is wiped after use. */
static void apply_password_file(const char *path, apply_ctx *a)
{
    char sub[256];
    char *pw = ferry_read_small_file(path, 1024, sub, sizeof(sub));

    if (!pw) {
        snprintf(a->errstr, a->errstr_size, "kafka.sasl.password_file: %s", sub);
        a->failed = 1;
        return;
    }
    if (!*pw) {
        snprintf(a->errstr, a->errstr_size, "kafka.sasl.password_file: %s is empty", path);
        a->failed = 1;
    } else {
        apply_prop("sasl.password", pw, a);
    }
    memset(pw, 0, strlen(pw));
    free(pw);
}

/* Our defaults first, then the declared security settings, then the user's pass-through
 * properties so they can override. */
static rd_kafka_conf_t *base_conf(const ferry_conf *conf, const char *const *defaults,
                                  char *errstr, size_t errstr_size)
{
    static const char *const declared[] = {"security.protocol", "sasl.mechanism",
                                           "sasl.username", "ssl.ca.location", NULL};
    rd_kafka_conf_t *kconf = rd_kafka_conf_new();
    apply_ctx a = {kconf, errstr, errstr_size, 0};
    const char *pwfile = ferry_conf_str(conf, "kafka.sasl.password_file");
    char key[64];

    rd_kafka_conf_set_log_cb(kconf, log_cb);
    rd_kafka_conf_set_error_cb(kconf, error_cb);
    apply_prop("bootstrap.servers", ferry_conf_str(conf, "kafka.brokers"), &a);
    for (size_t i = 0; defaults && defaults[i] && !a.failed; i += 2)
        apply_prop(defaults[i], defaults[i + 1], &a);
    for (size_t i = 0; declared[i] && !a.failed; i++) {
        const char *v;
        snprintf(key, sizeof(key), "kafka.%s", declared[i]);
        if ((v = ferry_conf_str(conf, key)))
            apply_prop(declared[i], v, &a);
    }
    if (pwfile && !a.failed)
        apply_password_file(pwfile, &a);
    if (!a.failed)
        ferry_conf_kafka_foreach(conf, apply_prop, &a);
    if (a.failed) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    return kconf;
}

typedef struct delivery {
    atomic_int done;
    rd_kafka_resp_err_t err;
    int32_t partition;
    int64_t offset;
} delivery;

static void dr_msg_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    delivery *d = m->_private;
    if (!d)
        return;
    d->err = m->err;
    d->partition = m->partition;
    d->offset = m->offset;
    atomic_store(&d->done, 1);
}

rd_kafka_t *ferry_kafka_producer_new(const ferry_conf *conf, char *errstr, size_t errstr_size)
{
    static const char *const defaults[] = {
        /* Every produce waits for its delivery report (ferry_kafka_produce_many_until), so a
         * linger would only delay it: 5 ms more for each published event, DatasetMigrated
         * and dead-letter record. Messages produced together still share a request. */
        "enable.idempotence", "true", "acks", "all", "linger.ms", "0",
        /* A delivery report always arrives within this bound, so a synchronous produce
         * never waits forever. */
        "message.timeout.ms", "60000", NULL};
    rd_kafka_conf_t *kconf = base_conf(conf, defaults, errstr, errstr_size);
    rd_kafka_t *rk;

    if (!kconf)
        return NULL;
    rd_kafka_conf_set_dr_msg_cb(kconf, dr_msg_cb);
    rk = rd_kafka_new(RD_KAFKA_PRODUCER, kconf, errstr, errstr_size);
    if (!rk)
        rd_kafka_conf_destroy(kconf);
    return rk;
}

int ferry_kafka_producer_destroy(rd_kafka_t *rk, int timeout_ms)
{
    int left;
    if (!rk)
        return 0;
    rd_kafka_flush(rk, timeout_ms);
    left = rd_kafka_outq_len(rk);
    rd_kafka_destroy(rk);
    return left;
}

rd_kafka_t *ferry_kafka_consumer_new(const ferry_conf *conf, const char *group_id,
                                     ferry_kafka_conf_cb customize, void *opaque, char *errstr,
                                     size_t errstr_size)
{
    const char *defaults[] = {"group.id", group_id, "enable.auto.offset.store", "false",
                              "enable.auto.commit", "true", "auto.offset.reset", "earliest",
                              "enable.partition.eof", "false",
                              /* The worker pauses a partition while its event is in
                               * flight; once resumed, the partition joins the next fetch
                               * only after the outstanding one, a long poll of up to
                               * this long, returns: at librdkafka's 500 ms an event
                               * behind a just-finished one waited that much before its
                               * migration began (bench/first-copy p90 414 ms). */
                              "fetch.wait.max.ms", "100", NULL};
    rd_kafka_conf_t *kconf = base_conf(conf, defaults, errstr, errstr_size);
    rd_kafka_t *rk;

    if (!kconf)
        return NULL;
    /* ferry's own guarantees depend on this one; a pass-through must not undo it. */
    if (rd_kafka_conf_set(kconf, "enable.auto.offset.store", "false", errstr, errstr_size) !=
        RD_KAFKA_CONF_OK) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    if (customize)
        customize(kconf, opaque);
    rk = rd_kafka_new(RD_KAFKA_CONSUMER, kconf, errstr, errstr_size);
    if (!rk) {
        rd_kafka_conf_destroy(kconf);
        return NULL;
    }
    rd_kafka_poll_set_consumer(rk);
    return rk;
}

ferry_rc ferry_kafka_classify(rd_kafka_resp_err_t e)
{
    switch (e) {
    case RD_KAFKA_RESP_ERR_NO_ERROR: return FERRY_OK;
    case RD_KAFKA_RESP_ERR__FATAL:
    case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
    case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED:
    case RD_KAFKA_RESP_ERR__INVALID_ARG: return FERRY_ERR_PERMANENT;
    default: return FERRY_ERR_RETRYABLE;
    }
}

ferry_rc ferry_kafka_produce_sync(rd_kafka_t *rk, const char *topic, const void *key,
                                  size_t key_len, const void *value, size_t value_len,
                                  const rd_kafka_headers_t *headers, int32_t *partition,
                                  int64_t *offset, ferry_error *err)
{
    return ferry_kafka_produce_sync_until(rk, topic, key, key_len, value, value_len, headers, 0,
                                          partition, offset, err);
}

ferry_rc ferry_kafka_produce_sync_until(rd_kafka_t *rk, const char *topic, const void *key,
                                        size_t key_len, const void *value, size_t value_len,
                                        const rd_kafka_headers_t *headers, int64_t deadline_ms,
                                        int32_t *partition, int64_t *offset, ferry_error *err)
{
    ferry_kafka_msg m = {.key = key,
                         .key_len = key_len,
                         .value = value,
                         .value_len = value_len,
                         .headers = headers,
                         .partition = -1,
                         .offset = -1};
    ferry_rc rc = ferry_kafka_produce_many_until(rk, topic, &m, 1, deadline_ms, err);

    if (rc == FERRY_OK && partition)
        *partition = m.partition;
    if (rc == FERRY_OK && offset)
        *offset = m.offset;
    return rc;
}

ferry_rc ferry_kafka_partition_count(rd_kafka_t *rk, const char *topic, int timeout_ms,
                                     int32_t *count, ferry_error *err)
{
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e;
    ferry_rc rc = FERRY_OK;

    if (!rkt)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_KAFKA, "topic %s: %s", topic,
                               rd_kafka_err2str(rd_kafka_last_error()));
    e = rd_kafka_metadata(rk, 0, rkt, &md, timeout_ms);
    if (e)
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_KAFKA, "metadata of %s: %s",
                             topic, rd_kafka_err2str(e));
    else if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt < 1)
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_KAFKA, "metadata of %s: %s",
                             topic,
                             md->topic_cnt == 1 && md->topics[0].err
                                 ? rd_kafka_err2str(md->topics[0].err)
                                 : "no partitions");
    else
        *count = md->topics[0].partition_cnt;
    if (md)
        rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    return rc;
}

ferry_rc ferry_kafka_produce_many_until(rd_kafka_t *rk, const char *topic,
                                        ferry_kafka_msg *msgs, size_t n, int64_t deadline_ms,
                                        ferry_error *err)
{
    delivery one, *d = n == 1 ? &one : calloc(n, sizeof(*d));
    rd_kafka_resp_err_t e = RD_KAFKA_RESP_ERR_NO_ERROR, failed = RD_KAFKA_RESP_ERR_NO_ERROR;
    size_t sent = 0, i;
    int purged = 0;
    ferry_rc rc = FERRY_OK;

    if (!d)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    for (; sent < n; sent++) {
        rd_kafka_headers_t *hdrs = msgs[sent].headers
                                       ? rd_kafka_headers_copy(msgs[sent].headers)
                                       : NULL;
        atomic_init(&d[sent].done, 0);
        d[sent].err = RD_KAFKA_RESP_ERR_NO_ERROR;
        e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic),
                              RD_KAFKA_V_PARTITION(msgs[sent].pinned ? msgs[sent].pin
                                                                     : RD_KAFKA_PARTITION_UA),
                              RD_KAFKA_V_KEY((void *)msgs[sent].key, msgs[sent].key_len),
                              RD_KAFKA_V_VALUE((void *)msgs[sent].value, msgs[sent].value_len),
                              RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                              RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE(&d[sent]),
                              RD_KAFKA_V_END);
        if (e) {
            rd_kafka_headers_destroy(hdrs); /* ownership passes only on success */
            break;
        }
    }
    /* d lives until here: wait for every report of what went out, which
     * message.timeout.ms bounds. Past the deadline the messages are purged, which makes
     * their reports come at once. */
    for (i = 0; i < sent; i++) {
        while (!atomic_load(&d[i].done)) {
            rd_kafka_poll(rk, 20);
            if (deadline_ms > 0 && !purged && ferry_mono_ms() >= deadline_ms) {
                rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
                purged = 1;
            }
        }
        if (d[i].err && !failed)
            failed = d[i].err;
        msgs[i].partition = d[i].partition;
        msgs[i].offset = d[i].offset;
    }
    if (e)
        rc = ferry_error_set(err, ferry_kafka_classify(e), FERRY_EC_KAFKA,
                             "producing to %s: %s", topic, rd_kafka_err2str(e));
    else if (failed)
        rc = ferry_error_set(err, ferry_kafka_classify(failed), FERRY_EC_KAFKA,
                             "delivery to %s failed: %s", topic,
                             purged ? "no acknowledgement before the deadline"
                                    : rd_kafka_err2str(failed));
    if (d != &one)
        free(d);
    return rc;
}

static void find_brokers(const char *prop, const char *value, void *opaque)
{
    const char **brokers = opaque;
    if (!strcmp(prop, "bootstrap.servers") || !strcmp(prop, "metadata.broker.list"))
        *brokers = value;
}

const char *ferry_kafka_brokers(const ferry_conf *conf)
{
    const char *brokers = ferry_conf_str(conf, "kafka.brokers");
    ferry_conf_kafka_foreach(conf, find_brokers, &brokers); /* a pass-through wins */
    return brokers ? brokers : "(none)";
}

ferry_rc ferry_kafka_unreachable(const ferry_conf *conf, rd_kafka_resp_err_t e, int timeout_ms,
                                 ferry_error *err)
{
    char cause[sizeof(last_cause)];

    pthread_mutex_lock(&conn_lock);
    snprintf(cause, sizeof(cause), "%s", last_cause[0] ? last_cause : rd_kafka_err2str(e));
    pthread_mutex_unlock(&conn_lock);
    return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_KAFKA,
                           "cannot reach Kafka at %s within %d s: %s",
                           ferry_kafka_brokers(conf), (timeout_ms + 999) / 1000, cause);
}

ferry_rc ferry_kafka_wait_brokers(rd_kafka_t *rk, const ferry_conf *conf, int timeout_ms,
                                  ferry_error *err)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, NULL, &md, timeout_ms);

    if (md)
        rd_kafka_metadata_destroy(md);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR)
        return FERRY_OK;
    return ferry_kafka_unreachable(conf, e, timeout_ms, err);
}

int ferry_kafka_header_str(const rd_kafka_headers_t *hdrs, const char *name, char *out,
                           size_t size)
{
    const void *v;
    size_t n;
    if (!hdrs || rd_kafka_header_get_last(hdrs, name, &v, &n) != RD_KAFKA_RESP_ERR_NO_ERROR)
        return -1;
    if (!v)
        n = 0;
    if (n >= size)
        n = size - 1;
    memcpy(out, v, n);
    out[n] = '\0';
    return 0;
}
