/* `ferry-worker status`: reads Redis only, so it works from any machine that can reach
 * it, while workers run or not. */
#include "worker_status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_connect.h"
#include "ferry_state.h"
#include "ferry_util.h"

typedef struct row {
    ferry_migration_state st;
} row;

static int cmp_rows(const void *a, const void *b)
{
    return strcmp(((const row *)a)->st.dataset, ((const row *)b)->st.dataset);
}

static ferry_rc load(ferry_redis *r, row **out, size_t *n, ferry_error *err)
{
    ferry_state_iter *it = ferry_state_iter_new(r, 200);
    const char *name;
    row *rows = NULL;
    size_t count = 0;
    ferry_rc rc = FERRY_OK;

    if (!it)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
    while ((rc = ferry_state_iter_next(it, &name, err)) == FERRY_OK && name) {
        row *nr;
        int dup = 0;
        for (size_t i = 0; i < count; i++) /* SCAN may return a name twice */
            dup |= strcmp(rows[i].st.dataset, name) == 0;
        if (dup)
            continue;
        nr = realloc(rows, (count + 1) * sizeof(*nr));
        if (!nr) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
            break;
        }
        rows = nr;
        memset(&rows[count], 0, sizeof(rows[count]));
        if ((rc = ferry_state_get(r, name, &rows[count].st, err)) != FERRY_OK)
            break;
        if (!rows[count].st.dataset)
            rows[count].st.dataset = strdup(name);
        count++;
    }
    ferry_state_iter_destroy(it);
    if (rc != FERRY_OK) {
        for (size_t i = 0; i < count; i++)
            ferry_migration_state_clear(&rows[i].st);
        free(rows);
        return rc;
    }
    qsort(rows, count, sizeof(*rows), cmp_rows);
    *out = rows;
    *n = count;
    return FERRY_OK;
}

/* Objects per second over the migration's life so far. */
static double rate_of(const ferry_migration_state *st, int64_t now)
{
    int64_t end = st->status == FERRY_MIG_DONE && st->finished_at_ms ? st->finished_at_ms : now;
    double secs = st->started_at_ms ? (double)(end - st->started_at_ms) / 1000.0 : 0;
    return secs > 0.5 ? (double)st->objects_done / secs : 0;
}

static void print_text(const row *rows, size_t n)
{
    int64_t now = ferry_now_ms();
    printf("%-28s %-8s %-32s %16s %10s %9s %7s  %s\n", "DATASET", "STATUS", "PROGRESS",
           "OBJECTS", "BYTES", "RATE", "ETA", "WORKER / LAST ERROR");
    for (size_t i = 0; i < n; i++) {
        const ferry_migration_state *st = &rows[i].st;
        char bar[31], objs[40], bytes[24], rate[24] = "-", eta[24] = "-";
        double frac = -1, r = rate_of(st, now);
        int fill;

        if (st->objects_total > 0)
            frac = (double)st->objects_done / (double)st->objects_total;
        else if (st->status == FERRY_MIG_DONE)
            frac = 1;
        if (frac > 1)
            frac = 1;
        fill = frac < 0 ? 0 : (int)(frac * 30 + 0.5);
        for (int k = 0; k < 30; k++)
            bar[k] = k < fill ? '#' : '.';
        bar[30] = '\0';
        if (st->objects_total >= 0)
            snprintf(objs, sizeof(objs), "%lld/%lld", (long long)st->objects_done,
                     (long long)st->objects_total);
        else
            snprintf(objs, sizeof(objs), "%lld/?", (long long)st->objects_done);
        ferry_fmt_bytes((double)st->bytes_done, bytes, sizeof(bytes));
        if (r > 0)
            snprintf(rate, sizeof(rate), "%.0f obj/s", r);
        if (st->status == FERRY_MIG_RUNNING && r > 0 && st->objects_total > st->objects_done)
            snprintf(eta, sizeof(eta), "%.0fs",
                     (double)(st->objects_total - st->objects_done) / r);
        printf("%-28.28s %-8s [%s] %16s %10s %9s %7s  %s%s%s\n", st->dataset,
               ferry_mig_status_name(st->status), bar, objs, bytes, rate, eta,
               st->worker ? st->worker : "-", st->last_error ? " / " : "",
               st->last_error ? st->last_error : "");
    }
    if (n == 0)
        printf("(no migrations recorded)\n");
}

static void print_json(const row *rows, size_t n)
{
    json_t *arr = json_array();
    int64_t now = ferry_now_ms();
    char *s;
    for (size_t i = 0; i < n; i++) {
        const ferry_migration_state *st = &rows[i].st;
        json_t *o = json_object();
        json_object_set_new(o, "dataset", json_string(st->dataset));
        json_object_set_new(o, "status", json_string(ferry_mig_status_name(st->status)));
        json_object_set_new(o, "event_id", st->event_id ? json_string(st->event_id) : json_null());
        json_object_set_new(o, "worker", st->worker ? json_string(st->worker) : json_null());
        json_object_set_new(o, "source", st->source_uri ? json_string(st->source_uri) : json_null());
        json_object_set_new(o, "target", st->target_uri ? json_string(st->target_uri) : json_null());
        json_object_set_new(o, "objects_done", json_integer(st->objects_done));
        json_object_set_new(o, "objects_total",
                            st->objects_total >= 0 ? json_integer(st->objects_total) : json_null());
        json_object_set_new(o, "bytes_done", json_integer(st->bytes_done));
        json_object_set_new(o, "objects_per_second", json_real(rate_of(st, now)));
        json_object_set_new(o, "started_at_ms", json_integer(st->started_at_ms));
        json_object_set_new(o, "updated_at_ms", json_integer(st->updated_at_ms));
        json_object_set_new(o, "finished_at_ms", json_integer(st->finished_at_ms));
        json_object_set_new(o, "checkpoint", st->checkpoint ? json_string(st->checkpoint) : json_null());
        json_object_set_new(o, "last_error", st->last_error ? json_string(st->last_error) : json_null());
        json_object_set_new(o, "error_class", st->error_class ? json_string(st->error_class) : json_null());
        json_array_append_new(arr, o);
    }
    s = json_dumps(arr, JSON_COMPACT);
    if (s)
        puts(s);
    free(s);
    json_decref(arr);
}

int worker_status_main(const ferry_conf *conf, int watch, int json)
{
    char errstr[512];
    ferry_redis *r = ferry_connect_redis(conf, errstr, sizeof(errstr));
    int exit_code = FERRY_EXIT_FAILURE;
    int tty = isatty(STDOUT_FILENO);

    if (!r) {
        fprintf(stderr, "ferry-worker status: %s\n", errstr);
        return FERRY_EXIT_USAGE;
    }
    for (;;) {
        row *rows = NULL;
        size_t n = 0;
        ferry_error err = {0};
        if (load(r, &rows, &n, &err) != FERRY_OK) {
            fprintf(stderr, "ferry-worker status: reading %s: %s\n", ferry_redis_describe(r),
                    err.msg);
            if (!watch)
                break;
        } else {
            if (watch && tty && !json)
                printf("\033[H\033[2J");
            if (json)
                print_json(rows, n);
            else
                print_text(rows, n);
            fflush(stdout);
            for (size_t i = 0; i < n; i++)
                ferry_migration_state_clear(&rows[i].st);
            free(rows);
            exit_code = FERRY_EXIT_OK;
        }
        if (!watch)
            break;
        ferry_sleep_ms(1000);
    }
    ferry_redis_destroy(r);
    return exit_code;
}
