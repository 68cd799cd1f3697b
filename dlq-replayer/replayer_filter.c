/* The selection options every command shares, turned into a ferry_dlq_filter (whose
 * matching lives in lib/ferry_dlq.c, where it is unit-tested). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_util.h"
#include "replayer.h"

int replayer_filter_opt(replayer_opts *o, int opt, const char *arg, char *errstr,
                        size_t errstr_size)
{
    ferry_dlq_filter *f = &o->filter;
    int64_t t;
    char *end;
    long v;

    switch (opt) {
    case 'd':
        if (!*arg) {
            snprintf(errstr, errstr_size, "--dataset wants a name or a glob");
            return -1;
        }
        if (ferry_dlq_filter_add_dataset(f, arg) != 0) {
            snprintf(errstr, errstr_size, "too many --dataset options (at most %d)",
                     FERRY_DLQ_FILTER_MAX);
            return -1;
        }
        return 1;
    case 'e':
        if (!*arg) {
            snprintf(errstr, errstr_size, "--error-class wants a class");
            return -1;
        }
        if (ferry_dlq_filter_add_error_class(f, arg) != 0) {
            snprintf(errstr, errstr_size, "too many --error-class options (at most %d)",
                     FERRY_DLQ_FILTER_MAX);
            return -1;
        }
        return 1;
    case 'p':
        v = strtol(arg, &end, 10);
        if (end == arg || *end || v < 0 || v > INT32_MAX) {
            snprintf(errstr, errstr_size, "--partition wants a partition number, got \"%s\"",
                     arg);
            return -1;
        }
        f->partition = (int32_t)v;
        return 1;
    case REPLAYER_OPT_SINCE:
    case REPLAYER_OPT_UNTIL: {
        char sub[300];
        const char *name = opt == REPLAYER_OPT_SINCE ? "--since" : "--until";
        if (ferry_dlq_parse_time(arg, ferry_now_ms(), &t, sub, sizeof(sub)) != 0) {
            snprintf(errstr, errstr_size, "%s: %s", name, sub);
            return -1;
        }
        if (opt == REPLAYER_OPT_SINCE)
            f->since_ms = t;
        else
            f->until_ms = t;
        if (f->since_ms != INT64_MIN && f->until_ms != INT64_MAX &&
            f->since_ms >= f->until_ms) {
            snprintf(errstr, errstr_size, "--since must be before --until");
            return -1;
        }
        return 1;
    }
    }
    return 0;
}

/* Appends sep (when out is not empty) and text, bounded. */
static void append(char *out, size_t size, size_t *len, const char *sep, const char *text)
{
    int n;
    if (*len >= size)
        return;
    n = snprintf(out + *len, size - *len, "%s%s", *len ? sep : "", text);
    if (n > 0)
        *len += (size_t)n;
}

static void list(char *out, size_t size, size_t *len, const char *what,
                 const char *const *items, size_t n)
{
    if (n == 0)
        return;
    append(out, size, len, ", ", what);
    for (size_t i = 0; i < n; i++)
        append(out, size, len, i ? "|" : " ", items[i]);
}

void replayer_filter_describe(const ferry_dlq_filter *f, char *out, size_t size)
{
    size_t len = 0;
    char t[64], p[32];

    out[0] = '\0';
    list(out, size, &len, "dataset", f->datasets, f->n_datasets);
    list(out, size, &len, "class", f->error_classes, f->n_error_classes);
    if (f->since_ms != INT64_MIN) {
        memcpy(t, "since ", 6);
        ferry_dlq_format_time(f->since_ms, t + 6, sizeof(t) - 6);
        append(out, size, &len, ", ", t);
    }
    if (f->until_ms != INT64_MAX) {
        memcpy(t, "until ", 6);
        ferry_dlq_format_time(f->until_ms, t + 6, sizeof(t) - 6);
        append(out, size, &len, ", ", t);
    }
    if (f->partition >= 0) {
        snprintf(p, sizeof(p), "partition %d", (int)f->partition);
        append(out, size, &len, ", ", p);
    }
    if (!len)
        append(out, size, &len, "", "all records");
}
