/* `ferry-worker status`: reads Redis only, so it works from any machine that can reach
 * it, while workers run or not. The JSON form (worker_status_json) is shared with the
 * worker's status page (GET /v1/migrations, worker_http.c). */
#include "worker_status.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_connect.h"
#include "ferry_log.h"
#include "ferry_state.h"
#include "ferry_util.h"

static int cmp_states(const void *a, const void *b)
{
    return strcmp(((const ferry_migration_state *)a)->dataset,
                  ((const ferry_migration_state *)b)->dataset);
}

static void free_states(ferry_migration_state *st, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ferry_migration_state_clear(&st[i]);
    free(st);
}

/* Every migration in Redis, sorted by name, each once (SCAN may repeat a name). */
static ferry_rc load(ferry_redis *r, ferry_migration_state **out, size_t *n, ferry_error *err)
{
    ferry_state_iter *it = ferry_state_iter_new(r, 200);
    const char *name;
    ferry_migration_state *st = NULL;
    size_t count = 0, cap = 0, kept = 0;
    ferry_rc rc = FERRY_OK;

    if (!it)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
    while ((rc = ferry_state_iter_next(it, &name, err)) == FERRY_OK && name) {
        if (count == cap) {
            ferry_migration_state *ns = realloc(st, (cap ? cap * 2 : 16) * sizeof(*ns));
            if (!ns) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                                     "out of memory");
                break;
            }
            st = ns;
            cap = cap ? cap * 2 : 16;
        }
        memset(&st[count], 0, sizeof(st[count]));
        if ((rc = ferry_state_get(r, name, &st[count], err)) != FERRY_OK)
            break;
        if (st[count].status == FERRY_MIG_NONE) { /* deleted since SCAN saw it */
            ferry_migration_state_clear(&st[count]);
            continue;
        }
        if (!st[count].dataset && !(st[count].dataset = strdup(name))) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
            break;
        }
        count++;
    }
    ferry_state_iter_destroy(it);
    if (rc != FERRY_OK) {
        free_states(st, count);
        return rc;
    }
    if (count)
        qsort(st, count, sizeof(*st), cmp_states);
    for (size_t i = 0; i < count; i++) {
        if (kept && !strcmp(st[kept - 1].dataset, st[i].dataset)) {
            ferry_migration_state_clear(&st[i]);
            continue;
        }
        if (kept != i)
            st[kept] = st[i];
        kept++;
    }
    *out = st;
    *n = kept;
    return FERRY_OK;
}

/* Seconds of the current attempt so far (until it finished or stopped): a retry or a
 * resume after a wait must not be averaged with the time before it. States written
 * before attempt_started_at existed fall back to the migration's whole life. */
static double secs_of(const ferry_migration_state *st, int64_t now)
{
    int64_t start = st->attempt_started_at_ms ? st->attempt_started_at_ms : st->started_at_ms;
    int64_t end = st->status != FERRY_MIG_RUNNING && st->finished_at_ms ? st->finished_at_ms
                  : st->status == FERRY_MIG_RUNNING                     ? now
                  : st->updated_at_ms                                   ? st->updated_at_ms
                                                                        : now;
    return start && end > start ? (double)(end - start) / 1000.0 : 0;
}

static int64_t since_attempt(int64_t done, int64_t at_start, const ferry_migration_state *st)
{
    if (!st->attempt_started_at_ms)
        return done;
    return done > at_start ? done - at_start : 0;
}

double worker_status_rate(const ferry_migration_state *st, int64_t now)
{
    double secs = secs_of(st, now);
    return secs > 0.5 ? (double)since_attempt(st->objects_done, st->attempt_objects, st) / secs
                      : 0;
}

double worker_status_byte_rate(const ferry_migration_state *st, int64_t now)
{
    double secs = secs_of(st, now);
    return secs > 0.5 ? (double)since_attempt(st->bytes_done, st->attempt_bytes, st) / secs : 0;
}

double worker_status_eta(const ferry_migration_state *st, double rate)
{
    if (st->status != FERRY_MIG_RUNNING || rate <= 0 || st->objects_total < 0 ||
        st->objects_total_lower_bound)
        return -1;
    return st->objects_total > st->objects_done
               ? (double)(st->objects_total - st->objects_done) / rate
               : 0;
}

/* Strings from Redis may hold anything (error messages do), and json_string() refuses
 * invalid UTF-8: such a string is sent with its non-ASCII bytes as '?' instead. */
static json_t *str_or_null(const char *s)
{
    json_t *j;
    char *copy;

    if (!s)
        return json_null();
    if ((j = json_string(s)))
        return j;
    if (!(copy = strdup(s)))
        return json_null();
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j ? j : json_null();
}

static json_t *state_json(const ferry_migration_state *st, int64_t now)
{
    json_t *o = json_object();
    const char *hash = strchr(st->dataset, '#');
    double rate = worker_status_rate(st, now), prog = ferry_migration_progress(st);
    double eta = worker_status_eta(st, rate);
    char *parent = hash ? strndup(st->dataset, (size_t)(hash - st->dataset)) : NULL;

    if (!o) {
        free(parent);
        return NULL;
    }
    json_object_set_new(o, "dataset", str_or_null(st->dataset));
    json_object_set_new(o, "chunk_of", str_or_null(parent));
    json_object_set_new(o, "status", json_string(ferry_mig_status_name(st->status)));
    json_object_set_new(o, "event_id", str_or_null(st->event_id));
    json_object_set_new(o, "worker", str_or_null(st->worker));
    json_object_set_new(o, "source", str_or_null(st->source_uri));
    json_object_set_new(o, "target", str_or_null(st->target_uri));
    json_object_set_new(o, "objects_done", json_integer(st->objects_done));
    json_object_set_new(o, "objects_total",
                        st->objects_total >= 0 ? json_integer(st->objects_total) : json_null());
    /* still listing: objects_total is "at least" (progress and ETA are then unknown) */
    json_object_set_new(o, "objects_total_lower_bound",
                        json_boolean(st->objects_total_lower_bound && st->objects_total >= 0));
    json_object_set_new(o, "bytes_done", json_integer(st->bytes_done));
    json_object_set_new(o, "objects_copied", json_integer(st->objects_copied));
    json_object_set_new(o, "objects_identical", json_integer(st->objects_identical));
    json_object_set_new(o, "objects_vanished", json_integer(st->objects_vanished));
    json_object_set_new(o, "objects_failed", json_integer(st->objects_failed));
    json_object_set_new(o, "report", str_or_null(st->report));
    json_object_set_new(o, "report_object", str_or_null(st->report_object));
    json_object_set_new(o, "progress", prog >= 0 ? json_real(prog) : json_null());
    json_object_set_new(o, "objects_per_second", json_real(rate));
    json_object_set_new(o, "bytes_per_second", json_real(worker_status_byte_rate(st, now)));
    json_object_set_new(o, "eta_seconds", eta >= 0 ? json_real(eta) : json_null());
    json_object_set_new(o, "attempts", json_integer(st->attempts));
    json_object_set_new(o, "started_at_ms", json_integer(st->started_at_ms));
    json_object_set_new(o, "attempt_started_at_ms", json_integer(st->attempt_started_at_ms));
    json_object_set_new(o, "updated_at_ms", json_integer(st->updated_at_ms));
    json_object_set_new(o, "finished_at_ms", json_integer(st->finished_at_ms));
    json_object_set_new(o, "checkpoint", str_or_null(st->checkpoint));
    json_object_set_new(o, "last_error", str_or_null(st->last_error));
    json_object_set_new(o, "error_class", str_or_null(st->error_class));
    /* which checks verified the copies so far, e.g. "checksum-sha256,size" */
    json_object_set_new(o, "verify", str_or_null(st->verify));
    free(parent);
    return o;
}

ferry_rc worker_status_json(ferry_redis *r, json_t **out, ferry_error *err)
{
    ferry_migration_state *st = NULL;
    size_t n = 0;
    int64_t now = ferry_now_ms();
    json_t *arr;
    ferry_rc rc;

    *out = NULL;
    if ((rc = load(r, &st, &n, err)) != FERRY_OK)
        return rc;
    if (!(arr = json_array())) {
        free_states(st, n);
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
    }
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, state_json(&st[i], now));
    free_states(st, n);
    *out = arr;
    return FERRY_OK;
}

/* ---- text ------------------------------------------------------------------------ */

/* For a terminal: control bytes (an error message may carry anything, even escape
 * sequences) become '?'; at most size - 1 bytes. */
static const char *printable(const char *s, char *out, size_t size)
{
    size_t i = 0;
    for (; s && *s && i + 1 < size; s++)
        out[i++] = ((unsigned char)*s < 0x20 || *s == 0x7f) ? '?' : *s;
    out[i] = '\0';
    return out;
}

static void fmt_duration(double secs, char *out, size_t size)
{
    long long s = (long long)(secs + 0.5);
    if (s >= 3600)
        snprintf(out, size, "%lldh%02lldm", s / 3600, (s % 3600) / 60);
    else if (s >= 60)
        snprintf(out, size, "%lldm%02llds", s / 60, s % 60);
    else
        snprintf(out, size, "%llds", s);
}

/* What the previous --watch refresh saw, for rates over the last interval. */
typedef struct seen {
    char *dataset;
    int64_t at_ms, objects, bytes;
} seen;

static const seen *seen_find(const seen *prev, size_t n, const char *dataset)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(prev[i].dataset, dataset))
            return &prev[i];
    return NULL;
}

static void seen_free(seen *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(s[i].dataset);
    free(s);
}

static void print_text(const ferry_migration_state *st, size_t n, const seen *prev,
                       size_t nprev)
{
    int64_t now = ferry_now_ms();
    size_t counts[FERRY_MIG_UNKNOWN + 1] = {0};

    printf("%-28s %-8s %-32s %15s %10s %18s %7s  %-23s %s\n", "DATASET", "STATUS", "PROGRESS",
           "OBJECTS", "BYTES", "RATE", "ETA", "VERIFIED BY", "WORKER / LAST ERROR");
    for (size_t i = 0; i < n; i++) {
        const ferry_migration_state *s = &st[i];
        const seen *p = seen_find(prev, nprev, s->dataset);
        char bar[31], objs[48], bytes[24], rate[40] = "-", eta[24] = "-", brate[24];
        char name[64], shown[68], who[160], error[300], how[96];
        int chunk = strchr(s->dataset, '#') != NULL; /* "<dataset>#<i>", after its parent */
        double frac = ferry_migration_progress(s), r = worker_status_rate(s, now),
               br = worker_status_byte_rate(s, now);
        int fill = frac < 0 ? 0 : (int)(frac * 30 + 0.5);

        if ((unsigned)s->status <= FERRY_MIG_UNKNOWN && !chunk)
            counts[s->status]++;
        /* While watching, the rate of the last refresh interval says more than the
         * average since the start (which includes the listing and any pause). */
        if (p && s->status == FERRY_MIG_RUNNING && now - p->at_ms >= 500 &&
            s->objects_done >= p->objects) {
            double secs = (double)(now - p->at_ms) / 1000.0;
            r = (double)(s->objects_done - p->objects) / secs;
            br = (double)(s->bytes_done - p->bytes) / secs;
        }
        for (int k = 0; k < 30; k++)
            bar[k] = k < fill ? '#' : '.';
        bar[30] = '\0';
        if (s->objects_total >= 0)
            snprintf(objs, sizeof(objs), "%lld/%s%lld", (long long)s->objects_done,
                     s->objects_total_lower_bound ? ">=" : "", (long long)s->objects_total);
        else
            snprintf(objs, sizeof(objs), "%lld/?", (long long)s->objects_done);
        ferry_fmt_bytes((double)s->bytes_done, bytes, sizeof(bytes));
        if (r > 0) {
            ferry_fmt_bytes(br, brate, sizeof(brate));
            snprintf(rate, sizeof(rate), "%.0f/s %s/s", r, brate);
        }
        if (worker_status_eta(s, r) >= 0)
            fmt_duration(worker_status_eta(s, r), eta, sizeof(eta));
        snprintf(shown, sizeof(shown), "%s%s", chunk ? "  " : "",
                 printable(s->dataset, name, sizeof(name)));
        printf("%-28.28s %-8s [%s] %15s %10s %18s %7s  %-23s %s%s%s\n", shown,
               ferry_mig_status_name(s->status), bar, objs, bytes, rate, eta,
               s->verify ? printable(s->verify, how, sizeof(how)) : "-",
               s->worker ? printable(s->worker, who, sizeof(who)) : "-",
               s->last_error ? " / " : "",
               s->last_error ? printable(s->last_error, error, sizeof(error)) : "");
        if (s->objects_failed > 0 || s->objects_vanished > 0)
            printf("%-28s %lld copied, %lld identical, %lld vanished, %lld failed%s%s\n", "",
                   (long long)s->objects_copied, (long long)s->objects_identical,
                   (long long)s->objects_vanished, (long long)s->objects_failed,
                   s->report ? "; report: " : "",
                   s->report ? printable(s->report, error, sizeof(error)) : "");
    }
    if (n == 0)
        printf("(no migrations recorded)\n");
    else
        printf("\n%zu migration(s): %zu running, %zu pending, %zu done, %zu failed, %zu with "
               "failed objects\n",
               counts[FERRY_MIG_PENDING] + counts[FERRY_MIG_RUNNING] + counts[FERRY_MIG_DONE] +
                   counts[FERRY_MIG_FAILED] + counts[FERRY_MIG_FAILED_OBJECTS] +
                   counts[FERRY_MIG_UNKNOWN],
               counts[FERRY_MIG_RUNNING], counts[FERRY_MIG_PENDING], counts[FERRY_MIG_DONE],
               counts[FERRY_MIG_FAILED], counts[FERRY_MIG_FAILED_OBJECTS]);
}

static seen *remember(const ferry_migration_state *st, size_t n)
{
    seen *s = calloc(n ? n : 1, sizeof(*s));
    int64_t now = ferry_now_ms();
    for (size_t i = 0; s && i < n; i++) {
        s[i].dataset = strdup(st[i].dataset);
        s[i].at_ms = now;
        s[i].objects = st[i].objects_done;
        s[i].bytes = st[i].bytes_done;
        if (!s[i].dataset) {
            seen_free(s, i);
            return NULL;
        }
    }
    return s;
}

int worker_status_main(const ferry_conf *conf, int watch, int json, int timeout_ms)
{
    char errstr[512];
    ferry_redis *r = ferry_connect_redis_timeouts(conf, timeout_ms, 0, errstr, sizeof(errstr));
    int exit_code = FERRY_EXIT_FAILURE;
    int tty = isatty(STDOUT_FILENO);
    seen *prev = NULL;
    size_t nprev = 0;

    if (!r) {
        fprintf(stderr, "ferry-worker status: %s\n", errstr);
        return FERRY_EXIT_USAGE;
    }
    /* --watch rides out an outage (it says so each second); a single report says once
     * which address failed and why. */
    if (!watch && ferry_connect_redis_reachable(r, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "ferry-worker status: %s\n", errstr);
        ferry_redis_destroy(r);
        return FERRY_EXIT_FAILURE;
    }
    /* stdout is the report; routine connection notices would only clutter it. */
    if (!ferry_log_enabled(FERRY_LOG_DEBUG))
        ferry_log_set_level(FERRY_LOG_WARN);
    for (;;) {
        ferry_error err = {0};
        ferry_rc rc;

        if (json) {
            json_t *arr = NULL;
            char *s = NULL;
            if ((rc = worker_status_json(r, &arr, &err)) == FERRY_OK &&
                (s = json_dumps(arr, JSON_COMPACT)))
                puts(s);
            free(s);
            json_decref(arr);
        } else {
            ferry_migration_state *st = NULL;
            size_t n = 0;
            if ((rc = load(r, &st, &n, &err)) == FERRY_OK) {
                if (watch && tty)
                    printf("\033[H\033[2J");
                print_text(st, n, prev, nprev);
                seen_free(prev, nprev);
                nprev = (prev = remember(st, n)) ? n : 0;
                free_states(st, n);
            }
        }
        if (rc != FERRY_OK) {
            fprintf(stderr, "ferry-worker status: %s\n", err.msg); /* "redis ADDR: ..." */
            if (!watch)
                break;
        } else {
            exit_code = FERRY_EXIT_OK;
        }
        fflush(stdout);
        if (!watch)
            break;
        ferry_sleep_ms(1000);
    }
    seen_free(prev, nprev);
    ferry_redis_destroy(r);
    return exit_code;
}
