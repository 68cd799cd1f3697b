/* In-process tests of the worker's poll loop (worker/worker_consume.c) against
 * librdkafka's mock cluster (rdkafka_mock.h): pause while an event is in flight, seek
 * back to an unprocessed offset (also when that seek fails), store an offset only for a
 * durable outcome, and rebalance. No external service: the mock brokers live in this
 * process. A fake pool thread stands in for the migration threads: it takes the jobs the
 * loop submits and completes them as the test decides. Eager `range` assignment, since
 * cooperative-sticky is broken on the 2.0.2 mock (shared/notes/machine-facts.md §1). */
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "ferry_test.h"
#include "ferry_test_mock.h"
#include "ferry_util.h"
#include "worker.h"

#define NMSG 12
/* Per wait; FERRY_TEST_TIMEOUT_SCALE multiplies it for slow runs (scripts/test's
 * valgrind pass sets 10: group joins are that much slower there). */
#define DEADLINE_MS 30000
static int64_t deadline_ms = DEADLINE_MS;

static char bootstraps[256];
static int topic_seq;

/* ---- the fake pool: one thread per worker ------------------------------------------ */

typedef struct fake {
    worker w;
    ferry_conf *conf;
    char topic[64], chunks[64];
    pthread_t pool, loop;
    int quit;
    int exit_code;
    /* what the migrations saw, under w.lock */
    int seen[NMSG];
    int fail_first; /* this offset's first attempt is not durable (store = 0), -1 none */
    int hold_ms;    /* each migration takes this long */
} fake;

/* Shared by every fake of a test: how often each offset was processed, by anyone. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static int seen_all[NMSG];
static int64_t started_ms[NMSG], ended_ms[NMSG]; /* of each offset's first processing */

static void *pool_main(void *arg)
{
    fake *f = arg;
    worker *w = &f->w;
    for (;;) {
        worker_job *job;
        int64_t t0;
        pthread_mutex_lock(&w->lock);
        while (!w->queue_head && !f->quit)
            pthread_cond_wait(&w->cond, &w->lock);
        if (!w->queue_head) {
            pthread_mutex_unlock(&w->lock);
            break;
        }
        job = w->queue_head;
        w->queue_head = job->next;
        if (!w->queue_head)
            w->queue_tail = NULL;
        job->next = NULL;
        pthread_mutex_unlock(&w->lock);

        t0 = ferry_mono_ms();
        if (f->hold_ms)
            ferry_sleep_ms(f->hold_ms);
        pthread_mutex_lock(&seen_lock);
        job->store = 1;
        if (job->offset >= 0 && job->offset < NMSG && job->topic == 0) {
            if (job->offset == f->fail_first && !seen_all[job->offset])
                job->store = 0; /* e.g. its lease was lost: must be processed again */
            if (!seen_all[job->offset]) {
                started_ms[job->offset] = t0;
                ended_ms[job->offset] = ferry_mono_ms();
            }
            seen_all[job->offset]++;
        }
        pthread_mutex_unlock(&seen_lock);
        worker_pool_finish(w, job);
    }
    return NULL;
}

static void *loop_main(void *arg)
{
    fake *f = arg;
    f->exit_code = worker_consume_run(&f->w);
    return NULL;
}

static void conf_set(ferry_conf *c, const char *k, const char *v)
{
    char errstr[256];
    if (ferry_conf_set(c, k, v, 0, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "setting %s: %s\n", k, errstr);
        abort();
    }
}

static void fake_start(fake *f, const char *topic, const char *chunks, const char *group)
{
    memset(f, 0, sizeof(*f));
    f->fail_first = -1;
    snprintf(f->topic, sizeof(f->topic), "%s", topic);
    snprintf(f->chunks, sizeof(f->chunks), "%s", chunks);
    f->conf = ferry_conf_new(worker_conf_defs);
    conf_set(f->conf, "kafka.brokers", bootstraps);
    conf_set(f->conf, "worker.group", group);
    conf_set(f->conf, "shutdown.timeout_ms", "20000");
    conf_set(f->conf, "kafka.partition.assignment.strategy", "range");
    /* The mock waits session - 1 s for members to rejoin a rebalance, session for them to
     * sync, and evicts a member silent for longer than the session on a 1 s tick (also
     * while it waits in JoinGroup: its response is then dropped and the client waits for
     * the request's timeout, max.poll.interval.ms + 3 s). 2.5 s left little room: once in
     * CI under ASan, two members consumed nothing for 30 s. 6 s costs ~5 s per rebalance;
     * the lower max.poll.interval.ms bounds a dropped JoinGroup to 23 s. A slow run
     * (valgrind) needs more still. The mock's own log (FERRY_TEST_MOCK_DEBUG, set by
     * CMake) is printed with a failure. */
    conf_set(f->conf, "kafka.session.timeout.ms", deadline_ms > DEADLINE_MS ? "10000" : "6000");
    conf_set(f->conf, "kafka.max.poll.interval.ms", "20000");
    conf_set(f->conf, "kafka.heartbeat.interval.ms", "300");
    conf_set(f->conf, "kafka.auto.commit.interval.ms", "200");
    conf_set(f->conf, "kafka.fetch.wait.max.ms", "50");
    f->w.conf = f->conf;
    snprintf(f->w.id, sizeof(f->w.id), "test");
    f->w.topics[0] = f->topic;
    f->w.topics[1] = f->chunks;
    atomic_init(&f->w.stopping, 0);
    pthread_mutex_init(&f->w.lock, NULL);
    pthread_cond_init(&f->w.cond, NULL);
}

static void fake_run(fake *f)
{
    pthread_create(&f->pool, NULL, pool_main, f);
    pthread_create(&f->loop, NULL, loop_main, f);
}

static void fake_stop(fake *f)
{
    atomic_store(&f->w.stopping, 1);
    pthread_join(f->loop, NULL);
    pthread_mutex_lock(&f->w.lock);
    f->quit = 1;
    pthread_cond_broadcast(&f->w.cond);
    pthread_mutex_unlock(&f->w.lock);
    pthread_join(f->pool, NULL);
    CHECK_INT(f->exit_code, 0);
    if (f->w.consumer) { /* left by the loop only when a job outlived the deadline */
        rd_kafka_queue_destroy(f->w.wake_q);
        rd_kafka_destroy(f->w.consumer);
    }
    pthread_mutex_destroy(&f->w.lock);
    pthread_cond_destroy(&f->w.cond);
    free(f->w.parts);
    ferry_conf_destroy(f->conf);
}

/* ---- cluster helpers ----------------------------------------------------------------- */

static void produce(const char *topic, int n)
{
    CHECK_INT(ferry_test_mock_produce(bootstraps, topic, 0, n), 0);
}

/* The group's committed offset of topic[0], -1 if none. */
static int64_t committed(const char *group, const char *topic)
{
    char errstr[256];
    rd_kafka_conf_t *c = rd_kafka_conf_new();
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_t *k;
    int64_t off = -1;
    rd_kafka_conf_set(c, "bootstrap.servers", bootstraps, errstr, sizeof(errstr));
    rd_kafka_conf_set(c, "group.id", group, errstr, sizeof(errstr));
    k = rd_kafka_new(RD_KAFKA_CONSUMER, c, errstr, sizeof(errstr));
    if (!k)
        abort();
    rd_kafka_topic_partition_list_add(l, topic, 0);
    if (rd_kafka_committed(k, l, 10000) == RD_KAFKA_RESP_ERR_NO_ERROR && !l->elems[0].err)
        off = l->elems[0].offset;
    rd_kafka_topic_partition_list_destroy(l);
    rd_kafka_destroy(k);
    return off;
}

/* Waits until every offset was processed at least once and `twice` (if >= 0) twice. */
static int wait_processed(int twice, const char *what)
{
    int64_t deadline = ferry_mono_ms() + deadline_ms;
    for (;;) {
        int ok = 1;
        pthread_mutex_lock(&seen_lock);
        for (int i = 0; i < NMSG; i++)
            if (!seen_all[i])
                ok = 0;
        if (twice >= 0 && seen_all[twice] < 2)
            ok = 0;
        pthread_mutex_unlock(&seen_lock);
        if (ok)
            return 1;
        if (ferry_mono_ms() > deadline) {
            fprintf(stderr, "timed out after %lld ms waiting for %s; processed counts:",
                    (long long)deadline_ms, what);
            for (int i = 0; i < NMSG; i++)
                fprintf(stderr, " %d:%d", i, seen_all[i]);
            fprintf(stderr, "\n");
            return 0;
        }
        ferry_sleep_ms(20);
    }
}

/* Waits until offset `off` was processed at least `times` times, by anyone. */
static int wait_seen(int off, int times, const char *what)
{
    int64_t deadline = ferry_mono_ms() + deadline_ms;
    int n;
    for (;;) {
        pthread_mutex_lock(&seen_lock);
        n = seen_all[off];
        pthread_mutex_unlock(&seen_lock);
        if (n >= times)
            return 1;
        if (ferry_mono_ms() > deadline) {
            fprintf(stderr,
                    "timed out after %lld ms waiting for %s; offset %d processed %d "
                    "time(s), expected %d\n",
                    (long long)deadline_ms, what, off, n, times);
            return 0;
        }
        ferry_sleep_ms(20);
    }
}

/* Waits until the group's committed offset of `topic` is `want`. */
static int wait_committed(const char *group, const char *topic, int64_t want, const char *what)
{
    int64_t deadline = ferry_mono_ms() + deadline_ms, off;
    for (;;) {
        off = committed(group, topic);
        if (off == want)
            return 1;
        if (ferry_mono_ms() > deadline) {
            fprintf(stderr,
                    "timed out after %lld ms waiting for %s; committed offset last "
                    "read %lld (-1: none or the read failed), expected %lld\n",
                    (long long)deadline_ms, what, (long long)off, (long long)want);
            return 0;
        }
        ferry_sleep_ms(100);
    }
}

static void reset_seen(void)
{
    pthread_mutex_lock(&seen_lock);
    memset(seen_all, 0, sizeof(seen_all));
    pthread_mutex_unlock(&seen_lock);
}

static void names(char *topic, char *chunks, char *group, size_t size)
{
    topic_seq++;
    snprintf(topic, size, "onboard-%d", topic_seq);
    snprintf(chunks, size, "chunks-%d", topic_seq);
    snprintf(group, size, "group-%d", topic_seq);
}

/* New topic and group holding NMSG events, nothing seen yet, a fake worker set up
 * (not yet running). Names are written to topic, chunks, group (64 bytes each). */
static void fresh_scene(fake *f, char *topic, char *chunks, char *group)
{
    names(topic, chunks, group, 64);
    reset_seen();
    produce(topic, NMSG);
    fake_start(f, topic, chunks, group);
}

/* ---- seek hooks ----------------------------------------------------------------------- */

static atomic_int seek_calls;
static int seek_failures; /* the first this many seeks fail */

/* Fails as a call (an error object). */
static rd_kafka_error_t *seek_fail_call(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts,
                                        int timeout_ms)
{
    if (atomic_fetch_add(&seek_calls, 1) < seek_failures)
        return rd_kafka_error_new(RD_KAFKA_RESP_ERR__TIMED_OUT, "forced by the test");
    return rd_kafka_seek_partitions(rk, parts, timeout_ms);
}

/* The call succeeds, the partition's seek does not (its .err). */
static rd_kafka_error_t *
seek_fail_partition(rd_kafka_t *rk, rd_kafka_topic_partition_list_t *parts, int timeout_ms)
{
    if (atomic_fetch_add(&seek_calls, 1) < seek_failures) {
        for (int i = 0; i < parts->cnt; i++)
            parts->elems[i].err = RD_KAFKA_RESP_ERR__STATE;
        return NULL;
    }
    return rd_kafka_seek_partitions(rk, parts, timeout_ms);
}

/* ---- pause hook ------------------------------------------------------------------------ */

/* Pause state per (topic, partition) as the loop's own calls set it, and the resumes of
 * a partition the loop did not hold paused. */
static pthread_mutex_t pause_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char topic[64];
    int32_t partition;
    int paused;
} pause_seen[8];
static int npause_seen, pauses, resumes, stray_resumes;
static rd_kafka_resp_err_t (*pause_real)(rd_kafka_t *, rd_kafka_topic_partition_list_t *, int);

static rd_kafka_resp_err_t pause_recorded(rd_kafka_t *rk,
                                          rd_kafka_topic_partition_list_t *parts, int pause)
{
    pthread_mutex_lock(&pause_lock);
    for (int i = 0; i < parts->cnt; i++) {
        int k = 0;
        while (k < npause_seen && (strcmp(pause_seen[k].topic, parts->elems[i].topic) ||
                                   pause_seen[k].partition != parts->elems[i].partition))
            k++;
        if (k == npause_seen && npause_seen < 8) {
            snprintf(pause_seen[k].topic, sizeof(pause_seen[k].topic), "%s",
                     parts->elems[i].topic);
            pause_seen[k].partition = parts->elems[i].partition;
            pause_seen[k].paused = 0;
            npause_seen++;
        }
        if (!pause && !pause_seen[k].paused)
            stray_resumes++;
        pause_seen[k].paused = pause;
        pause ? pauses++ : resumes++;
    }
    pthread_mutex_unlock(&pause_lock);
    return pause_real(rk, parts, pause);
}

/* ---- tests ------------------------------------------------------------------------------ */

/* The event at offset 4 is not durable on its first attempt, and the seek back to it
 * fails `failures` times: the partition must stay paused and the seek be retried, so the
 * event is processed again and nothing after it is committed first. */
static void seek_failure_case(rd_kafka_error_t *(*hook)(rd_kafka_t *,
                                                        rd_kafka_topic_partition_list_t *, int),
                              int failures)
{
    char topic[64], chunks[64], group[64];
    fake f;

    names(topic, chunks, group, sizeof(topic));
    reset_seen();
    produce(topic, NMSG);
    atomic_store(&seek_calls, 0);
    seek_failures = failures;
    worker_consume_seek = hook;
    fake_start(&f, topic, chunks, group);
    f.fail_first = 4;
    f.hold_ms = 5;
    fake_run(&f);
    CHECK(wait_processed(4, "every offset processed and offset 4 processed again after its "
                            "failed seek back"));
    fake_stop(&f);
    worker_consume_seek = rd_kafka_seek_partitions;
    CHECK(atomic_load(&seek_calls) > failures); /* failed ones, then the one that worked */
    CHECK_INT(committed(group, topic), NMSG);
    CHECK_INT(seen_all[4], 2);
}

static void test_seek_error_is_retried(void) { seek_failure_case(seek_fail_call, 2); }

static void test_seek_partition_error_is_retried(void)
{
    seek_failure_case(seek_fail_partition, 2);
}

/* Plain flow: each offset once, committed offset = end, a non-durable outcome processed
 * again (the seek works). */
static void test_offsets_stored_after_durable_outcome(void)
{
    char topic[64], chunks[64], group[64];
    fake f;

    fresh_scene(&f, topic, chunks, group);
    f.fail_first = 7;
    fake_run(&f);
    CHECK(wait_processed(7, "every offset processed and offset 7 processed again"));
    fake_stop(&f);
    CHECK_INT(committed(group, topic), NMSG);
    for (int i = 0; i < NMSG; i++)
        CHECK_INT(seen_all[i], i == 7 ? 2 : 1);
}

/* A partition is paused while its event is in flight and resumed after, and never
 * resumed when it was not paused: a resume takes a new op version of the partition, and
 * one taken while librdkafka starts the fetcher of a just-assigned partition can make
 * that start outdated, leaving the partition assigned but never fetched (the worker used
 * to resume every partition right after rd_kafka_assign). */
static void test_no_resume_of_unpaused_partition(void)
{
    char topic[64], chunks[64], group[64];
    fake f;

    pthread_mutex_lock(&pause_lock);
    npause_seen = pauses = resumes = stray_resumes = 0;
    pthread_mutex_unlock(&pause_lock);
    pause_real = worker_consume_pause;
    worker_consume_pause = pause_recorded;
    fresh_scene(&f, topic, chunks, group);
    f.hold_ms = 50; /* long enough for the next event to wait behind each one */
    fake_run(&f);
    CHECK(wait_processed(-1, "every offset processed"));
    CHECK(wait_committed(group, topic, NMSG, "the end committed"));
    fake_stop(&f);
    worker_consume_pause = pause_real;
    pthread_mutex_lock(&pause_lock);
    CHECK(pauses >= 1 && pauses < NMSG); /* one per event that waited behind another */
    CHECK(resumes >= pauses - 1);        /* after each (the last may meet the stop) */
    CHECK_INT(stray_resumes, 0);
    pthread_mutex_unlock(&pause_lock);
}

/* Back-to-back events of one partition: the next one is fetched while the one before it
 * runs and starts the moment that one ends. The loop used to pause the partition for
 * the whole migration and resume it after, so the next event waited for a resume and a
 * fetch, which queues behind the long poll (fetch.wait.max.ms) of partitions with
 * nothing to fetch: 32 datasets on 8 workers idled ~0.3 s between datasets. Here the
 * long poll is 600 ms and each event holds 800 ms, so any hand-off that waits for a
 * fetch shows as a gap of up to 600 ms. */
static void test_next_event_starts_without_a_fetch(void)
{
    char topic[64], chunks[64], group[64];
    int64_t limit = 300 * (deadline_ms / DEADLINE_MS), worst = 0;
    int worst_at = 0;
    fake f;

    fresh_scene(&f, topic, chunks, group);
    conf_set(f.conf, "kafka.fetch.wait.max.ms", "600");
    f.hold_ms = 800;
    fake_run(&f);
    CHECK(wait_processed(-1, "every offset processed"));
    fake_stop(&f);
    for (int i = 1; i < NMSG; i++)
        if (started_ms[i] - ended_ms[i - 1] > worst) {
            worst = started_ms[i] - ended_ms[i - 1];
            worst_at = i;
        }
    if (worst >= limit)
        fprintf(stderr, "offset %d started %lld ms after offset %d ended (limit %lld)\n",
                worst_at, (long long)worst, worst_at - 1, (long long)limit);
    CHECK(worst < limit);
}

/* A second member joins while the first has an event in flight: the first's partition
 * is revoked (eager), that event's offset is not stored under the old assignment, and
 * between them every offset is processed and the group commits the end. */
static void test_rebalance_loses_nothing(void)
{
    char topic[64], chunks[64], group[64];
    fake a, b;

    names(topic, chunks, group, sizeof(topic));
    reset_seen();
    produce(topic, NMSG);
    fake_start(&a, topic, chunks, group);
    a.hold_ms = 400; /* slow: the join happens while events are in flight */
    fake_run(&a);
    fake_start(&b, topic, chunks, group);
    b.hold_ms = 5;
    fake_run(&b);
    CHECK(wait_processed(-1, "every offset processed by one of two members"));
    fake_stop(&b);
    fake_stop(&a);
    /* A commit refused during the members' leaving (rebalance in progress) leaves the
     * group at an earlier offset: at least once, never past an unprocessed event. A third
     * member then processes the rest again, and the group reaches the end. Its group join
     * alone can take most of a deadline on a loaded machine, so first wait for it to have
     * been assigned the partition and processed the last event again, then, with a deadline
     * of its own, for the commit. */
    {
        int64_t c0 = committed(group, topic);
        int last_seen;
        fake c;
        CHECK(c0 >= 0 && c0 <= NMSG);
        pthread_mutex_lock(&seen_lock);
        last_seen = seen_all[NMSG - 1];
        pthread_mutex_unlock(&seen_lock);
        fake_start(&c, topic, chunks, group);
        c.hold_ms = 5;
        fake_run(&c);
        if (c0 < NMSG)
            CHECK(wait_seen(NMSG - 1, last_seen + 1,
                            "the third member to join, be assigned the partition and process "
                            "the last event again"));
        CHECK(wait_committed(group, topic, NMSG, "the third member to commit the end"));
        fake_stop(&c);
    }
    CHECK_INT(committed(group, topic), NMSG);
}

int main(void)
{
    rd_kafka_t *host;
    rd_kafka_mock_cluster_t *mc;

    ferry_log_set_level(getenv("FERRY_TEST_DEBUG") ? FERRY_LOG_DEBUG : FERRY_LOG_ERROR);
    if (getenv("FERRY_TEST_TIMEOUT_SCALE")) {
        long scale = strtol(getenv("FERRY_TEST_TIMEOUT_SCALE"), NULL, 10);
        if (scale > 0 && scale <= 100)
            deadline_ms *= scale;
    }
    mc = ferry_test_mock_start(&host, bootstraps, sizeof(bootstraps));
    if (!mc)
        return 1;
    for (int i = 1; i <= 6; i++) {
        char t[64];
        snprintf(t, sizeof(t), "onboard-%d", i);
        rd_kafka_mock_topic_create(mc, t, 1, 1);
        snprintf(t, sizeof(t), "chunks-%d", i);
        rd_kafka_mock_topic_create(mc, t, 1, 1);
    }

    RUN(test_offsets_stored_after_durable_outcome);
    RUN(test_seek_error_is_retried);
    RUN(test_seek_partition_error_is_retried);
    RUN(test_no_resume_of_unpaused_partition);
    RUN(test_next_event_starts_without_a_fetch);
    RUN(test_rebalance_loses_nothing);

    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(host);
    return TEST_EXIT();
}
