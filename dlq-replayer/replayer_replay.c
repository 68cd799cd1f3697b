/* `replay`: re-produce selected DLQ records to their original topic, each at most once.
 *
 *   1. lock     one replay run per DLQ topic at a time (replayer_lock.c)
 *   2. plan     read the DLQ, apply the filter, read each record's ledger entry, decide:
 *               ready / already replayed / interrupted / refused (loop guard, topic)
 *   3. recover  an "in-progress" entry means a run died between writing it and recording
 *               the broker's ack: the record may or may not be on the topic. Look for it
 *               there (header ferry-replayed-from) from shortly before the entry was
 *               written; found -> record it as done, not found -> replay it.
 *   4. replay   per record, at --rate: ledger "in-progress" -> produce (key, value
 *               byte-identical; ferry-replay-count + 1) and wait for the ack -> ledger
 *               "done" with where it landed.
 * A crash at any point loses nothing (the in-progress entry is written before producing)
 * and duplicates nothing the next run can see (step 3). The one window left -- a produce
 * request the broker appends after the recovery scan looked -- needs a kill during a
 * request and a rerun within milliseconds; its cost is one duplicate onboard event, which
 * the worker turns into a no-op (same event id and spec: ALREADY_DONE). */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry_cli.h"
#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_rate.h"
#include "ferry_util.h"
#include "replayer.h"

/* How far before an in-progress entry's time the recovery scan starts: producer and
 * broker clocks may differ (LogAppendTime) and the entry is written just before producing. */
#define RECOVER_MARGIN_MS (5 * 60 * 1000)
#define PRODUCE_ATTEMPTS 3
#define MAX_CONSECUTIVE_FAILURES 3

typedef enum {
    OUT_PENDING = 0,
    OUT_REPLAYED,  /* produced by this run */
    OUT_SKIPPED,   /* the ledger says an earlier run replayed it */
    OUT_RECOVERED, /* an interrupted run had produced it; now recorded as done */
    OUT_REFUSED,
    OUT_LIMITED, /* beyond --limit */
    OUT_FAILED,
    OUT_NOT_REACHED, /* interrupted, or stopped after repeated failures */
} outcome;

static const char *const outcome_names[] = {"pending",   "replayed",   "already-replayed",
                                            "recovered", "refused",    "limited",
                                            "failed",    "not-reached"};

typedef struct entry {
    int32_t partition;
    int64_t offset;
    uint64_t fp;
    int64_t replay_count; /* the record's own */
    char *dataset;
    char *topic;             /* where it goes back to (original topic) */
    ferry_dlq_action action; /* the plan */
    ferry_dlq_ledger ledger; /* as read while planning */
    outcome out;
    char reason[512];     /* refused / failed */
    int32_t to_partition; /* replayed / skipped / recovered: where it is */
    int64_t to_offset;
    int64_t new_count;
} entry;

typedef struct replay_ctx {
    replayer *rp;
    rd_kafka_t *producer;
    char run[40];
    replayer_lock *lock; /* NULL in a dry run */
    int64_t max_count, ttl_ms;
    entry *e;
    size_t n, cap;
    size_t batch_start; /* first entry not yet looked up in the ledger */
    /* execution */
    size_t cursor;
    ferry_rate rate;
    replayer_progress progress;
    int64_t attempted, produced, consecutive_failures;
    /* Test hook, FERRY_REPLAYER_TEST_CRASH=before-produce:N | after-produce:N: SIGKILL
     * ourselves around the N-th record's produce, to test recovery deterministically. */
    int64_t crash_before, crash_after;
    int stop; /* interrupted, lock lost or too many failures */
    char stop_reason[256];
    char errstr[512];
} replay_ctx;

static void ctx_free(replay_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->e[i].dataset);
        free(c->e[i].topic);
    }
    free(c->e);
}

static void from_text(const replay_ctx *c, const entry *e, char *out, size_t size)
{
    snprintf(out, size, "%s/%d/%" PRId64, c->rp->dlq_topic, (int)e->partition, e->offset);
}

static ferry_dlq_action decide(const replay_ctx *c, const ferry_dlq_record *r,
                               const ferry_dlq_ledger *l, uint64_t fp)
{
    return ferry_dlq_decide(r, l, fp, c->max_count, c->rp->opt.force,
                            ferry_conf_str(c->rp->conf, "replay.allowed_topics"),
                            ferry_conf_str(c->rp->conf, "topic.onboard"));
}

static void refusal_reason(const replay_ctx *c, entry *e, const ferry_dlq_record *r)
{
    if (e->action == FERRY_DLQ_REFUSE_MAX_COUNT) {
        if (r->replay_count < 0)
            snprintf(e->reason, sizeof(e->reason),
                     "its ferry-replay-count header is not a number; --force replays it");
        else if (r->replay_count == 0)
            snprintf(e->reason, sizeof(e->reason),
                     "replay.max_count=%" PRId64 " allows no replay; --force replays it",
                     c->max_count);
        else
            snprintf(e->reason, sizeof(e->reason),
                     "replayed %" PRId64 " time%s already (replay.max_count=%" PRId64
                     "); it keeps failing -- --force replays it anyway",
                     r->replay_count, r->replay_count == 1 ? "" : "s", c->max_count);
    } else if (e->action == FERRY_DLQ_REFUSE_TOPIC) {
        if (!r->original_topic[0])
            snprintf(e->reason, sizeof(e->reason), "no ferry-original-topic header");
        else
            snprintf(e->reason, sizeof(e->reason),
                     "original topic %s is not allowed (replay.allowed_topics, default "
                     "topic.onboard)",
                     r->original_topic);
    }
}

/* ---- plan --------------------------------------------------------------------------- */

/* Looks the pending batch up in the ledger and decides each entry. */
static int plan_flush(replay_ctx *c)
{
    const ferry_dlq_record *recs[REPLAYER_LEDGER_BATCH];
    ferry_dlq_record *tmp;
    ferry_dlq_ledger led[REPLAYER_LEDGER_BATCH];
    ferry_error err = {0};
    size_t n = c->n - c->batch_start;

    if (n == 0)
        return 0;
    /* The lookup needs only positions: build minimal records. */
    if (!(tmp = calloc(n, sizeof(*tmp)))) {
        snprintf(c->errstr, sizeof(c->errstr), "out of memory");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        tmp[i].partition = c->e[c->batch_start + i].partition;
        tmp[i].offset = c->e[c->batch_start + i].offset;
        recs[i] = &tmp[i];
    }
    if (replayer_ledger_lookup(c->rp->redis, c->rp->dlq_topic, recs, n, led, &err) !=
        FERRY_OK) {
        free(tmp);
        snprintf(c->errstr, sizeof(c->errstr),
                 "reading the replay ledger: %s (without it a record could be replayed twice, "
                 "so nothing is replayed)",
                 err.msg);
        return -1;
    }
    free(tmp);
    for (size_t i = 0; i < n; i++)
        c->e[c->batch_start + i].ledger = led[i];
    c->batch_start = c->n;
    return 0;
}

static int plan_message(const rd_kafka_message_t *m, void *opaque)
{
    replay_ctx *c = opaque;
    rd_kafka_headers_t *h = NULL;
    rd_kafka_timestamp_type_t tt;
    int64_t ts = rd_kafka_message_timestamp(m, &tt);
    ferry_dlq_record rec;
    entry *e;

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR)
        h = NULL;
    ferry_dlq_record_parse(h, m->key, m->key_len, m->partition, m->offset, ts, &rec);
    if (!ferry_dlq_filter_match(&c->rp->opt.filter, &rec))
        return 0;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        entry *ne = realloc(c->e, cap * sizeof(*ne));
        if (!ne) {
            snprintf(c->errstr, sizeof(c->errstr), "out of memory");
            return -1;
        }
        c->e = ne;
        c->cap = cap;
    }
    e = &c->e[c->n];
    memset(e, 0, sizeof(*e));
    e->partition = m->partition;
    e->offset = m->offset;
    e->fp = ferry_dlq_fingerprint(m->key, m->key_len, m->payload, m->len, ts);
    e->replay_count = rec.replay_count;
    e->dataset = strdup(rec.dataset);
    e->topic = strdup(rec.original_topic);
    e->to_partition = -1;
    e->to_offset = -1;
    if (!e->dataset || !e->topic) {
        free(e->dataset);
        free(e->topic);
        snprintf(c->errstr, sizeof(c->errstr), "out of memory");
        return -1;
    }
    c->n++;
    /* Decided after the ledger lookup; the record fields needed are kept in the entry. */
    if (c->n - c->batch_start == REPLAYER_LEDGER_BATCH && plan_flush(c) != 0)
        return -1;
    return 0;
}

/* Rebuilds the parts of a record decide() reads. */
static void entry_record(const entry *e, ferry_dlq_record *r)
{
    memset(r, 0, sizeof(*r));
    r->partition = e->partition;
    r->offset = e->offset;
    snprintf(r->dataset, sizeof(r->dataset), "%s", e->dataset);
    snprintf(r->original_topic, sizeof(r->original_topic), "%s", e->topic);
    r->replay_count = e->replay_count;
}

static void plan_decide(replay_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        ferry_dlq_record r;
        entry_record(e, &r);
        e->action = decide(c, &r, &e->ledger, e->fp);
        e->new_count = e->replay_count + 1;
        switch (e->action) {
        case FERRY_DLQ_SKIP_REPLAYED:
            e->out = OUT_SKIPPED;
            e->to_partition = e->ledger.partition;
            e->to_offset = e->ledger.offset;
            e->new_count = e->ledger.count;
            break;
        case FERRY_DLQ_REFUSE_MAX_COUNT:
        case FERRY_DLQ_REFUSE_TOPIC:
            e->out = OUT_REFUSED;
            refusal_reason(c, e, &r);
            break;
        default: break;
        }
    }
}

/* ---- recover ------------------------------------------------------------------------ */

typedef struct recover_scan {
    replay_ctx *c;
    const char *topic;
    size_t found;
    size_t wanted;
} recover_scan;

static int recover_message(const rd_kafka_message_t *m, void *opaque)
{
    recover_scan *s = opaque;
    replay_ctx *c = s->c;
    rd_kafka_headers_t *h = NULL;
    char from[512], want[512];

    if (rd_kafka_message_headers(m, &h) != RD_KAFKA_RESP_ERR_NO_ERROR || !h ||
        ferry_kafka_header_str(h, FERRY_DLQ_H_REPLAYED_FROM, from, sizeof(from)) != 0)
        return 0;
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        if (e->action != FERRY_DLQ_RECOVER || e->to_offset >= 0 || strcmp(e->topic, s->topic))
            continue;
        from_text(c, e, want, sizeof(want));
        if (strcmp(from, want) == 0) {
            e->to_partition = m->partition;
            e->to_offset = m->offset;
            s->found++;
        }
    }
    return 0;
}

/* Finds out, for every interrupted entry, whether its event reached the topic. */
static int recover(replay_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        replayer_range *ranges = NULL;
        size_t nr = 0;
        int exists = 0;
        int64_t since = INT64_MAX;
        recover_scan s = {c, e->topic, 0, 0};

        if (e->action != FERRY_DLQ_RECOVER || e->out != OUT_PENDING || e->to_offset >= 0)
            continue;
        /* One scan per topic covers every interrupted entry for it. */
        for (size_t j = i; j < c->n; j++) {
            if (c->e[j].action != FERRY_DLQ_RECOVER || strcmp(c->e[j].topic, e->topic) != 0)
                continue;
            s.wanted++;
            if (c->e[j].ledger.at_ms < since)
                since = c->e[j].ledger.at_ms;
        }
        if (e->topic[0] && (replayer_topic_ranges(c->rp->consumer, e->topic, &ranges, &nr,
                                                  &exists, c->errstr, sizeof(c->errstr)) != 0 ||
                            replayer_ranges_since(c->rp->consumer, e->topic, ranges, nr,
                                                  since - RECOVER_MARGIN_MS, c->errstr,
                                                  sizeof(c->errstr)) != 0)) {
            free(ranges);
            return -1;
        }
        for (size_t k = 0; k < nr && s.found < s.wanted; k++)
            if (replayer_scan_range(c->rp->consumer, e->topic, &ranges[k], recover_message, &s,
                                    c->errstr, sizeof(c->errstr)) != 0) {
                free(ranges);
                return -1;
            }
        free(ranges);
        /* Everything for this topic is now known: found, or not there. */
        for (size_t j = i; j < c->n; j++) {
            entry *x = &c->e[j];
            ferry_dlq_record r;
            if (x->action != FERRY_DLQ_RECOVER || strcmp(x->topic, e->topic) != 0 ||
                x->out != OUT_PENDING)
                continue;
            if (x->to_offset >= 0) {
                ferry_dlq_ledger done = x->ledger;
                ferry_error err = {0};
                x->new_count = x->ledger.count;
                x->out = OUT_RECOVERED;
                if (c->rp->opt.dry_run)
                    continue;
                done.status = FERRY_DLQ_LEDGER_DONE;
                snprintf(done.topic, sizeof(done.topic), "%s", x->topic);
                done.partition = x->to_partition;
                done.offset = x->to_offset;
                if (replayer_ledger_finish(c->rp->redis, c->rp->dlq_topic, x->partition,
                                           x->offset, &done, c->ttl_ms, &err) != FERRY_OK) {
                    snprintf(c->errstr, sizeof(c->errstr), "recording %d:%" PRId64 ": %s",
                             (int)x->partition, x->offset, err.msg);
                    return -1;
                }
                ferry_info(NULL,
                           "%d:%" PRId64 " was produced to %s [%d] @%" PRId64
                           " by an interrupted run; recorded it as replayed",
                           (int)x->partition, x->offset, x->topic, (int)x->to_partition,
                           x->to_offset);
            } else {
                /* Never landed: decide afresh, as if there were no entry. */
                entry_record(x, &r);
                x->action = decide(c, &r, NULL, x->fp);
                x->new_count = x->replay_count + 1;
                if (x->action != FERRY_DLQ_REPLAY) {
                    x->out = OUT_REFUSED;
                    refusal_reason(c, x, &r);
                }
            }
        }
    }
    return 0;
}

/* ---- replay ------------------------------------------------------------------------- */

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Sets c->stop when the run must end: interrupted, or the lock was lost. */
static int must_stop(replay_ctx *c)
{
    if (c->stop)
        return 1;
    if (replayer_interrupted) {
        c->stop = 1;
        snprintf(c->stop_reason, sizeof(c->stop_reason), "interrupted");
    } else if (replayer_lock_lost(c->lock)) {
        c->stop = 1;
        snprintf(c->stop_reason, sizeof(c->stop_reason),
                 "the replay lock expired and another run took it");
    }
    return c->stop;
}

/* Sleeps until the rate allows the next record; 0, or -1 if the run must stop. */
static int pace(replay_ctx *c)
{
    int64_t until = mono_us() + ferry_rate_reserve(&c->rate, mono_us());
    for (;;) {
        int64_t left = until - mono_us();
        if (must_stop(c))
            return -1;
        if (left <= 0)
            return 0;
        if (left > 100000)
            left = 100000;
        {
            struct timespec ts = {0, (long)left * 1000};
            nanosleep(&ts, NULL);
        }
    }
}

static void print_line(replay_ctx *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void print_line(replay_ctx *c, const char *fmt, ...)
{
    va_list ap;
    if (c->rp->opt.json)
        return;
    replayer_progress_hide(&c->progress);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

static void fail_entry(replay_ctx *c, entry *e, const char *msg)
{
    e->out = OUT_FAILED;
    snprintf(e->reason, sizeof(e->reason), "%s", msg);
    print_line(c, "failed    %d:%" PRId64 "  %s: %s\n", (int)e->partition, e->offset,
               e->dataset, msg);
    if (++c->consecutive_failures >= MAX_CONSECUTIVE_FAILURES && !c->stop) {
        c->stop = 1;
        snprintf(c->stop_reason, sizeof(c->stop_reason),
                 "%d failures in a row; stopping (is Kafka or Redis down?)",
                 MAX_CONSECUTIVE_FAILURES);
    }
}

static void replay_one(replay_ctx *c, entry *e, const rd_kafka_message_t *m)
{
    replayer *rp = c->rp;
    rd_kafka_headers_t *dh = NULL, *h;
    rd_kafka_timestamp_type_t tt;
    ferry_dlq_ledger led, existing;
    ferry_error err = {0};
    ferry_rc rc = FERRY_ERR_RETRYABLE;
    char from[512];
    int already = 0;
    int32_t part = -1;
    int64_t off = -1;

    if (ferry_dlq_fingerprint(m->key, m->key_len, m->payload, m->len,
                              rd_kafka_message_timestamp(m, &tt)) != e->fp) {
        fail_entry(c, e, "the record changed since it was read (DLQ topic recreated?)");
        return;
    }
    if (pace(c) != 0)
        return; /* stays pending: reported as not reached */

    memset(&led, 0, sizeof(led));
    led.status = FERRY_DLQ_LEDGER_IN_PROGRESS;
    snprintf(led.run, sizeof(led.run), "%s", c->run);
    led.fp = e->fp;
    led.at_ms = ferry_now_ms();
    led.count = e->new_count;
    led.partition = -1;
    led.offset = -1;
    if (replayer_ledger_begin(rp->redis, rp->dlq_topic, e->partition, e->offset, &led,
                              c->ttl_ms, &already, &existing, &err) != FERRY_OK) {
        char msg[600];
        snprintf(msg, sizeof(msg), "ledger: %s (not produced)", err.msg);
        fail_entry(c, e, msg);
        return;
    }
    if (already) {
        e->out = OUT_SKIPPED;
        e->to_partition = existing.partition;
        e->to_offset = existing.offset;
        return;
    }

    if (c->crash_before > 0 && ++c->attempted == c->crash_before) {
        /* Test hook: the ledger says in progress, nothing was produced. */
        fflush(NULL);
        raise(SIGKILL);
    }
    if (rd_kafka_message_headers(m, &dh) != RD_KAFKA_RESP_ERR_NO_ERROR)
        dh = NULL;
    from_text(c, e, from, sizeof(from));
    h = ferry_dlq_replay_headers(dh, e->new_count, from, ferry_now_ms());
    for (int attempt = 0; attempt < PRODUCE_ATTEMPTS; attempt++) {
        if (attempt)
            ferry_sleep_ms(ferry_backoff_ms(attempt, 500, 5000));
        rc = ferry_kafka_produce_sync_until(c->producer, e->topic, m->key, m->key_len,
                                            m->payload, m->len, h,
                                            ferry_mono_ms() + c->rp->timeout_ms, &part, &off,
                                            &err);
        if (rc != FERRY_ERR_RETRYABLE)
            break;
        ferry_warn(NULL, "replaying %d:%" PRId64 ": %s (retrying)", (int)e->partition,
                   e->offset, err.msg);
    }
    rd_kafka_headers_destroy(h);
    if (rc != FERRY_OK) {
        /* The in-progress entry stays: the next run looks for it on the topic first. */
        fail_entry(c, e, err.msg);
        return;
    }
    c->consecutive_failures = 0;
    if (c->crash_after > 0 && ++c->produced == c->crash_after) {
        /* Test hook: die like kill -9 in the worst place -- produced and acknowledged, not
         * yet recorded. */
        fflush(NULL);
        raise(SIGKILL);
    }
    led.status = FERRY_DLQ_LEDGER_DONE;
    snprintf(led.topic, sizeof(led.topic), "%s", e->topic);
    led.partition = part;
    led.offset = off;
    for (int attempt = 0; attempt < PRODUCE_ATTEMPTS; attempt++) {
        if (attempt)
            ferry_sleep_ms(ferry_backoff_ms(attempt, 200, 2000));
        rc = replayer_ledger_finish(rp->redis, rp->dlq_topic, e->partition, e->offset, &led,
                                    c->ttl_ms, &err);
        if (rc == FERRY_OK)
            break;
    }
    if (rc != FERRY_OK)
        ferry_warn(NULL,
                   "%d:%" PRId64 " was replayed but the ledger could not record it (%s); "
                   "the next replay finds it on the topic and will not produce it again",
                   (int)e->partition, e->offset, err.msg);
    e->out = OUT_REPLAYED;
    e->to_partition = part;
    e->to_offset = off;
    print_line(c,
               "replayed  %d:%" PRId64 "  %s -> %s [%d] @%" PRId64 " (replay count %" PRId64
               ")\n",
               (int)e->partition, e->offset, e->dataset, e->topic, (int)part, off,
               e->new_count);
}

static int replay_message(const rd_kafka_message_t *m, void *opaque)
{
    replay_ctx *c = opaque;
    while (c->cursor < c->n &&
           (c->e[c->cursor].partition != m->partition || c->e[c->cursor].offset < m->offset))
        c->cursor++;
    if (c->cursor < c->n && c->e[c->cursor].offset == m->offset &&
        c->e[c->cursor].action == FERRY_DLQ_REPLAY && c->e[c->cursor].out == OUT_PENDING) {
        replay_one(c, &c->e[c->cursor], m);
        if (c->e[c->cursor].out != OUT_PENDING)
            replayer_progress_set(&c->progress, c->progress.done + 1);
    }
    return must_stop(c) ? 1 : 0;
}

/* librdkafka 2.0 asks for a topic's metadata on its next 1 s timer tick after the first
 * produce to it; ask now, so the first record is not delayed (and --rate is exact). */
static void warm_up(replay_ctx *c)
{
    for (size_t i = 0; i < c->n; i++) {
        rd_kafka_topic_t *rkt;
        const struct rd_kafka_metadata *md = NULL;
        int seen = 0;
        if (c->e[i].action != FERRY_DLQ_REPLAY || c->e[i].out != OUT_PENDING)
            continue;
        for (size_t j = 0; j < i && !seen; j++)
            seen = c->e[j].action == FERRY_DLQ_REPLAY && c->e[j].out == OUT_PENDING &&
                   strcmp(c->e[j].topic, c->e[i].topic) == 0;
        if (seen || !(rkt = rd_kafka_topic_new(c->producer, c->e[i].topic, NULL)))
            continue;
        if (rd_kafka_metadata(c->producer, 0, rkt, &md, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR)
            rd_kafka_metadata_destroy(md);
        rd_kafka_topic_destroy(rkt);
    }
}

static int execute(replay_ctx *c, int64_t total)
{
    warm_up(c);
    replayer_progress_start(&c->progress, total);
    for (size_t i = 0; i < c->n && !c->stop;) {
        replayer_range r = {c->e[i].partition, -1, -1};
        size_t j = i;
        for (; j < c->n && c->e[j].partition == r.partition; j++) {
            if (c->e[j].action != FERRY_DLQ_REPLAY || c->e[j].out != OUT_PENDING)
                continue;
            if (r.start < 0)
                r.start = c->e[j].offset;
            r.end = c->e[j].offset + 1;
        }
        if (r.start >= 0) {
            c->cursor = i;
            if (replayer_scan_range(c->rp->consumer, c->rp->dlq_topic, &r, replay_message, c,
                                    c->errstr, sizeof(c->errstr)) != 0 &&
                !c->stop) {
                replayer_progress_end(&c->progress);
                return -1;
            }
        }
        i = j;
    }
    replayer_progress_end(&c->progress);
    return 0;
}

/* ---- report ------------------------------------------------------------------------- */

static int report(replay_ctx *c)
{
    int64_t count[OUT_NOT_REACHED + 1] = {0};
    int dry = c->rp->opt.dry_run;
    char desc[512];

    for (size_t i = 0; i < c->n; i++) {
        entry *e = &c->e[i];
        if (e->out == OUT_PENDING)
            e->out = dry ? OUT_PENDING : OUT_NOT_REACHED;
        count[e->out]++;
    }
    replayer_filter_describe(&c->rp->opt.filter, desc, sizeof(desc));
    if (c->rp->opt.json) {
        json_t *o = json_object(), *recs = json_array(), *cnt = json_object();
        char *s;
        for (size_t i = 0; i < c->n; i++) {
            const entry *e = &c->e[i];
            json_t *r = json_object();
            json_object_set_new(r, "partition", json_integer(e->partition));
            json_object_set_new(r, "offset", json_integer(e->offset));
            json_object_set_new(r, "dataset", replayer_json_str(e->dataset));
            json_object_set_new(r, "outcome",
                                json_string(dry && e->out == OUT_PENDING
                                                ? "would-replay"
                                                : outcome_names[e->out]));
            json_object_set_new(r, "reason",
                                e->reason[0] ? replayer_json_str(e->reason) : json_null());
            json_object_set_new(r, "topic", replayer_json_str(e->topic));
            json_object_set_new(r, "replay_count", json_integer(e->new_count));
            if (e->to_offset >= 0) {
                json_object_set_new(r, "to_partition", json_integer(e->to_partition));
                json_object_set_new(r, "to_offset", json_integer(e->to_offset));
            }
            json_array_append_new(recs, r);
        }
        for (int k = 0; k <= OUT_NOT_REACHED; k++)
            json_object_set_new(cnt,
                                dry && k == OUT_PENDING ? "would-replay" : outcome_names[k],
                                json_integer(count[k]));
        json_object_set_new(o, "dry_run", json_boolean(dry));
        json_object_set_new(o, "topic", replayer_json_str(c->rp->dlq_topic));
        json_object_set_new(o, "run", json_string(c->run));
        json_object_set_new(o, "selected", json_integer((json_int_t)c->n));
        json_object_set_new(o, "counts", cnt);
        json_object_set_new(o, "records", recs);
        if (c->stop_reason[0])
            json_object_set_new(o, "stopped", replayer_json_str(c->stop_reason));
        s = json_dumps(o, JSON_INDENT(2));
        if (s)
            printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        for (size_t i = 0; i < c->n; i++) {
            const entry *e = &c->e[i];
            if (dry && e->out == OUT_PENDING)
                printf("would replay  %d:%" PRId64 "  %s -> %s (replay count %" PRId64
                       " -> %" PRId64 ")\n",
                       (int)e->partition, e->offset, e->dataset, e->topic, e->replay_count,
                       e->new_count);
            else if (e->out == OUT_REFUSED)
                printf("%s  %d:%" PRId64 "  %s: %s\n", dry ? "would refuse" : "refused  ",
                       (int)e->partition, e->offset, e->dataset, e->reason);
            else if (e->out == OUT_RECOVERED)
                printf("%s  %d:%" PRId64 "  %s: already on %s [%d] @%" PRId64
                       " (an interrupted run produced it)\n",
                       dry ? "would record" : "recovered", (int)e->partition, e->offset,
                       e->dataset, e->topic, (int)e->to_partition, e->to_offset);
            else if (e->out == OUT_NOT_REACHED)
                printf("not reached  %d:%" PRId64 "  %s\n", (int)e->partition, e->offset,
                       e->dataset);
        }
        if (c->stop_reason[0])
            printf("stopped: %s\n", c->stop_reason);
        printf("%s%zu selected in %s (%s): %" PRId64 " %s", dry ? "dry run: " : "", c->n,
               c->rp->dlq_topic, desc, dry ? count[OUT_PENDING] : count[OUT_REPLAYED],
               dry ? "would be replayed" : "replayed");
        for (int k = OUT_SKIPPED; k <= OUT_NOT_REACHED; k++) {
            static const char *const label[] = {"",          "",           "already replayed",
                                                "recovered", "refused",    "left by --limit",
                                                "failed",    "not reached"};
            if (count[k])
                printf(", %" PRId64 " %s", count[k], label[k]);
        }
        printf("\n");
        if (dry)
            printf("dry run: nothing was produced and the ledger was not changed\n");
    }
    fflush(stdout);
    if (dry)
        return FERRY_EXIT_OK;
    return count[OUT_FAILED] || count[OUT_REFUSED] || count[OUT_NOT_REACHED]
               ? FERRY_EXIT_FAILURE
               : FERRY_EXIT_OK;
}

/* ---- main --------------------------------------------------------------------------- */

int replayer_replay(replayer *rp)
{
    replay_ctx c;
    replayer_range *ranges = NULL;
    size_t nr = 0;
    int exists = 0, rc = FERRY_EXIT_FAILURE;
    int64_t total = 0, chosen = 0;
    const char *crash = getenv("FERRY_REPLAYER_TEST_CRASH");

    memset(&c, 0, sizeof(c));
    c.rp = rp;
    c.max_count = ferry_conf_int(rp->conf, "replay.max_count");
    c.ttl_ms = ferry_conf_int(rp->conf, "replay.ledger_ttl_days") * 86400LL * 1000;
    if (crash && !strncmp(crash, "before-produce:", 15))
        c.crash_before = strtoll(crash + 15, NULL, 10);
    else if (crash && !strncmp(crash, "after-produce:", 14))
        c.crash_after = strtoll(crash + 14, NULL, 10);
    ferry_rate_init(&c.rate, rp->opt.rate, 1);
    if (ferry_uuid_v4(c.run, sizeof(c.run)) != 0) {
        fprintf(stderr, "ferry-dlq-replayer: no randomness for a run id\n");
        return FERRY_EXIT_FAILURE;
    }

    if (!rp->opt.dry_run) {
        if (!(c.producer = ferry_kafka_producer_new(rp->conf, c.errstr, sizeof(c.errstr)))) {
            fprintf(stderr, "ferry-dlq-replayer: creating the producer: %s\n", c.errstr);
            goto out;
        }
        if (!(c.lock = replayer_lock_take(rp->conf, rp->dlq_topic, c.run, c.errstr,
                                          sizeof(c.errstr)))) {
            fprintf(stderr, "ferry-dlq-replayer: %s\n", c.errstr);
            goto out;
        }
    }

    /* plan */
    if (replayer_topic_ranges(rp->consumer, rp->dlq_topic, &ranges, &nr, &exists, c.errstr,
                              sizeof(c.errstr)) != 0)
        goto fail;
    for (size_t i = 0; i < nr; i++) {
        if (rp->opt.filter.partition >= 0 && ranges[i].partition != rp->opt.filter.partition)
            continue;
        if (replayer_scan_range(rp->consumer, rp->dlq_topic, &ranges[i], plan_message, &c,
                                c.errstr, sizeof(c.errstr)) != 0)
            goto fail;
    }
    if (plan_flush(&c) != 0)
        goto fail;
    plan_decide(&c);
    if (recover(&c) != 0)
        goto fail;
    for (size_t i = 0; i < c.n; i++) {
        entry *e = &c.e[i];
        if (e->action != FERRY_DLQ_REPLAY || e->out != OUT_PENDING)
            continue;
        if (rp->opt.limit >= 0 && chosen >= rp->opt.limit) {
            e->out = OUT_LIMITED;
            continue;
        }
        chosen++;
    }
    total = chosen;
    if (!exists)
        ferry_info(NULL, "topic %s does not exist: nothing was dead-lettered", rp->dlq_topic);

    if (!rp->opt.dry_run && total > 0) {
        if (execute(&c, total) != 0)
            goto fail;
    }
    rc = report(&c);
    goto out;
fail:
    fprintf(stderr, "ferry-dlq-replayer: %s\n", c.errstr);
    if (c.n > 0 && !rp->opt.dry_run)
        report(&c);
    rc = FERRY_EXIT_FAILURE;
out:
    replayer_lock_release(c.lock);
    if (c.producer && ferry_kafka_producer_destroy(c.producer, 10000) > 0)
        rc = FERRY_EXIT_FAILURE;
    free(ranges);
    ctx_free(&c);
    return rc;
}
