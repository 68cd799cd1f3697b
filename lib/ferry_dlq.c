#include "ferry_dlq.h"

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_kafka.h"
#include "ferry_util.h"

const char *const ferry_dlq_own_headers[] = {FERRY_DLQ_H_ERROR_CLASS,
                                             FERRY_DLQ_H_ERROR_MESSAGE,
                                             FERRY_DLQ_H_ORIGINAL_TOPIC,
                                             FERRY_DLQ_H_ORIGINAL_PARTITION,
                                             FERRY_DLQ_H_ORIGINAL_OFFSET,
                                             FERRY_DLQ_H_ATTEMPTS,
                                             FERRY_DLQ_H_FAILED_AT,
                                             FERRY_DLQ_H_WORKER,
                                             FERRY_DLQ_H_REPLAY_COUNT,
                                             FERRY_DLQ_H_DLT_ORIGINAL_TOPIC,
                                             FERRY_DLQ_H_DLT_ORIGINAL_PARTITION,
                                             FERRY_DLQ_H_DLT_ORIGINAL_OFFSET,
                                             FERRY_DLQ_H_DLT_EXCEPTION_MESSAGE,
                                             FERRY_DLQ_H_REPORT,
                                             NULL};

/* ---- record ------------------------------------------------------------------------ */

/* Strict decimal: optional '-', digits only, no overflow. */
static int parse_i64(const char *s, int64_t *out)
{
    char *end;
    long long v;
    if (!*s || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* Header as text; "" if absent. Returns 1 if present. */
static int hdr(const rd_kafka_headers_t *h, const char *name, char *out, size_t size)
{
    if (ferry_kafka_header_str(h, name, out, size) == 0)
        return 1;
    out[0] = '\0';
    return 0;
}

static int64_t hdr_num(const rd_kafka_headers_t *h, const char *name, const char *fallback,
                       int64_t absent, int64_t bad)
{
    char buf[32];
    int64_t v;
    if (!hdr(h, name, buf, sizeof(buf)) && !(fallback && hdr(h, fallback, buf, sizeof(buf))))
        return absent;
    return parse_i64(buf, &v) == 0 ? v : bad;
}

void ferry_dlq_record_parse(const rd_kafka_headers_t *hdrs, const void *key, size_t key_len,
                            int32_t partition, int64_t offset, int64_t timestamp_ms,
                            ferry_dlq_record *r)
{
    int64_t v;

    memset(r, 0, sizeof(*r));
    r->partition = partition;
    r->offset = offset;
    r->timestamp_ms = timestamp_ms >= 0 ? timestamp_ms : -1;
    if (key) {
        size_t n = key_len < sizeof(r->dataset) - 1 ? key_len : sizeof(r->dataset) - 1;
        memcpy(r->dataset, key, n);
        r->dataset[n] = '\0';
    }
    hdr(hdrs, FERRY_DLQ_H_ERROR_CLASS, r->error_class, sizeof(r->error_class));
    if (!hdr(hdrs, FERRY_DLQ_H_ERROR_MESSAGE, r->error_message, sizeof(r->error_message)))
        hdr(hdrs, FERRY_DLQ_H_DLT_EXCEPTION_MESSAGE, r->error_message,
            sizeof(r->error_message));
    if (!hdr(hdrs, FERRY_DLQ_H_ORIGINAL_TOPIC, r->original_topic, sizeof(r->original_topic)))
        hdr(hdrs, FERRY_DLQ_H_DLT_ORIGINAL_TOPIC, r->original_topic, sizeof(r->original_topic));
    v = hdr_num(hdrs, FERRY_DLQ_H_ORIGINAL_PARTITION, FERRY_DLQ_H_DLT_ORIGINAL_PARTITION, -1,
                -1);
    r->original_partition = v >= 0 && v <= INT32_MAX ? (int32_t)v : -1;
    v = hdr_num(hdrs, FERRY_DLQ_H_ORIGINAL_OFFSET, FERRY_DLQ_H_DLT_ORIGINAL_OFFSET, -1, -1);
    r->original_offset = v >= 0 ? v : -1;
    v = hdr_num(hdrs, FERRY_DLQ_H_ATTEMPTS, NULL, -1, -1);
    r->attempts = v >= 0 && v <= INT_MAX ? (int)v : -1;
    v = hdr_num(hdrs, FERRY_DLQ_H_FAILED_AT, NULL, -1, -1);
    r->failed_at_ms = v >= 0 ? v : r->timestamp_ms;
    hdr(hdrs, FERRY_DLQ_H_WORKER, r->worker, sizeof(r->worker));
    /* An unreadable count must not read as 0: the loop guard treats -1 as "at the max". */
    v = hdr_num(hdrs, FERRY_DLQ_H_REPLAY_COUNT, NULL, 0, -1);
    r->replay_count = v >= 0 ? v : -1;
}

uint64_t ferry_dlq_fingerprint(const void *key, size_t key_len, const void *value,
                               size_t value_len, int64_t timestamp_ms)
{
    uint64_t h = FERRY_FNV1A64_INIT;
    uint64_t lens[3] = {key ? key_len : UINT64_MAX, value ? value_len : UINT64_MAX,
                        (uint64_t)timestamp_ms};
    h = ferry_fnv1a64(h, lens,
                      sizeof(lens)); /* lengths first: no two inputs share a byte stream */
    if (key)
        h = ferry_fnv1a64(h, key, key_len);
    if (value)
        h = ferry_fnv1a64(h, value, value_len);
    return h;
}

/* ---- filter ------------------------------------------------------------------------ */

void ferry_dlq_filter_init(ferry_dlq_filter *f)
{
    memset(f, 0, sizeof(*f));
    f->since_ms = INT64_MIN;
    f->until_ms = INT64_MAX;
    f->partition = -1;
}

int ferry_dlq_filter_add_dataset(ferry_dlq_filter *f, const char *pattern)
{
    if (f->n_datasets >= FERRY_DLQ_FILTER_MAX)
        return -1;
    f->datasets[f->n_datasets++] = pattern;
    return 0;
}

int ferry_dlq_filter_add_error_class(ferry_dlq_filter *f, const char *pattern)
{
    if (f->n_error_classes >= FERRY_DLQ_FILTER_MAX)
        return -1;
    f->error_classes[f->n_error_classes++] = pattern;
    return 0;
}

static int any_match(const char *const *patterns, size_t n, const char *s)
{
    if (n == 0)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(patterns[i], s) == 0 || fnmatch(patterns[i], s, 0) == 0)
            return 1;
    return 0;
}

int ferry_dlq_filter_match(const ferry_dlq_filter *f, const ferry_dlq_record *r)
{
    if (f->partition >= 0 && r->partition != f->partition)
        return 0;
    if (!any_match(f->datasets, f->n_datasets, r->dataset))
        return 0;
    if (!any_match(f->error_classes, f->n_error_classes, r->error_class))
        return 0;
    if (f->since_ms != INT64_MIN || f->until_ms != INT64_MAX) {
        if (r->failed_at_ms < 0)
            return 0;
        if (r->failed_at_ms < f->since_ms || r->failed_at_ms >= f->until_ms)
            return 0;
    }
    return 1;
}

/* ---- time ------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    int64_t era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    int64_t era, doe, yoe, doy, mp;
    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int days_in_month(int64_t y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

/* Exactly n digits at *p; advances. */
static int digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return -1;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return 0;
}

static int parse_relative(const char *s, int64_t now_ms, int64_t *out)
{
    int64_t total = 0;
    const char *p = s;

    if (strcmp(s, "now") == 0) {
        *out = now_ms;
        return 0;
    }
    while (*p) {
        int64_t n = 0, unit;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            n = n * 10 + (*p++ - '0');
            if (n > 100000000) /* bounds every product below */
                return -1;
        }
        switch (*p++) {
        case 's': unit = 1000; break;
        case 'm': unit = 60 * 1000; break;
        case 'h': unit = 3600 * 1000; break;
        case 'd': unit = 86400 * 1000LL; break;
        case 'w': unit = 7 * 86400 * 1000LL; break;
        default: return -1;
        }
        total += n * unit;
        if (total > 200LL * 365 * 86400 * 1000)
            return -1;
    }
    *out = now_ms - total;
    return 0;
}

static int parse_iso(const char *s, int64_t *out, char *errstr, size_t errstr_size)
{
    const char *p = s;
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, zh = 0, zm = 0, sign = 1;
    int64_t t;

    if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
        digits(&p, 2, &d))
        goto bad;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo)) {
        snprintf(errstr, errstr_size, "\"%s\": no such date", s);
        return -1;
    }
    if (*p == '\0')
        goto done; /* a date alone: midnight UTC */
    if (*p != 'T' && *p != 't' && *p != ' ')
        goto bad;
    p++;
    if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
        goto bad;
    if (*p == ':') {
        p++;
        if (digits(&p, 2, &sec))
            goto bad;
        if (*p == '.' || *p == ',') {
            int scale = 100;
            p++;
            if (!isdigit((unsigned char)*p))
                goto bad;
            for (; isdigit((unsigned char)*p); p++) {
                ms += (*p - '0') * scale;
                scale /= 10; /* digits past milliseconds are read and dropped */
            }
        }
    }
    if (h > 23 || mi > 59 || sec > 59) {
        snprintf(errstr, errstr_size, "\"%s\": no such time of day", s);
        return -1;
    }
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        sign = *p++ == '-' ? -1 : 1;
        if (digits(&p, 2, &zh))
            goto bad;
        if (*p == ':')
            p++;
        if (*p && digits(&p, 2, &zm))
            goto bad;
        if (zh > 23 || zm > 59)
            goto bad;
    } else if (*p == '\0') {
        snprintf(errstr, errstr_size,
                 "\"%s\" has no time zone: add Z for UTC (e.g. %sZ) or an offset like +01:00",
                 s, s);
        return -1;
    } else {
        goto bad;
    }
    if (*p)
        goto bad;
done:
    t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec;
    t -= sign * (zh * 3600 + zm * 60);
    *out = t * 1000 + ms;
    return 0;
bad:
    snprintf(errstr, errstr_size,
             "\"%s\" is not a time: use ISO-8601 UTC like 2026-11-26T01:00:00Z, or a "
             "duration back from now like 30m, 2h, 1h30m, 7d",
             s);
    return -1;
}

int ferry_dlq_parse_time(const char *s, int64_t now_ms, int64_t *out_ms, char *errstr,
                         size_t errstr_size)
{
    size_t n = strlen(s);
    /* A 4-digit year followed by '-' is a date; anything else with digits is relative. */
    if (n >= 5 && isdigit((unsigned char)s[0]) && isdigit((unsigned char)s[1]) &&
        isdigit((unsigned char)s[2]) && isdigit((unsigned char)s[3]) && s[4] == '-')
        return parse_iso(s, out_ms, errstr, errstr_size);
    if (n > 0 && parse_relative(s, now_ms, out_ms) == 0)
        return 0;
    snprintf(errstr, errstr_size,
             "\"%s\" is not a time: use ISO-8601 UTC like 2026-11-26T01:00:00Z, or a "
             "duration back from now like 30m, 2h, 1h30m, 7d",
             s);
    return -1;
}

void ferry_dlq_format_time(int64_t ms, char *out, size_t size)
{
    int64_t secs = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    int64_t days = secs >= 0 ? secs / 86400 : -((-secs + 86399) / 86400);
    int64_t rem = secs - days * 86400, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, size, "%04" PRId64 "-%02d-%02dT%02d:%02d:%02dZ", y, m, d, (int)(rem / 3600),
             (int)(rem % 3600 / 60), (int)(rem % 60));
}

int ferry_dlq_parse_position(const char *s, int32_t *partition, int64_t *offset)
{
    const char *colon = strchr(s, ':');
    char part[16];
    int64_t p, o;
    size_t n;

    if (!colon || colon == s || (n = (size_t)(colon - s)) >= sizeof(part))
        return -1;
    memcpy(part, s, n);
    part[n] = '\0';
    if (!isdigit((unsigned char)part[0]) || !isdigit((unsigned char)colon[1]) ||
        parse_i64(part, &p) || parse_i64(colon + 1, &o) || p > INT32_MAX)
        return -1;
    *partition = (int32_t)p;
    *offset = o;
    return 0;
}

/* ---- ledger ------------------------------------------------------------------------ */

static int topic_ok(const char *t)
{
    size_t n = strlen(t);
    if (n == 0 || n > 249)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)t[i]) && t[i] != '.' && t[i] != '_' && t[i] != '-')
            return 0;
    return 1;
}

int ferry_dlq_ledger_key(char *buf, size_t size, const char *dlq_topic, int32_t partition,
                         int64_t offset)
{
    int n;
    if (!topic_ok(dlq_topic) || partition < 0 || offset < 0)
        return -1;
    n = snprintf(buf, size, "ferry:replay:{%s}:%d:%" PRId64, dlq_topic, (int)partition, offset);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int ferry_dlq_lock_key(char *buf, size_t size, const char *dlq_topic)
{
    int n;
    if (!topic_ok(dlq_topic))
        return -1;
    n = snprintf(buf, size, "ferry:replay:{%s}:lock", dlq_topic);
    return n > 0 && (size_t)n < size ? 0 : -1;
}

int ferry_dlq_ledger_format(const ferry_dlq_ledger *l, char *buf, size_t size)
{
    int n;
    if (l->status == FERRY_DLQ_LEDGER_DONE)
        n = snprintf(buf, size,
                     "done run=%s fp=%016" PRIx64 " at=%" PRId64 " count=%" PRId64
                     " to=%s/%d/%" PRId64,
                     l->run, l->fp, l->at_ms, l->count, l->topic, (int)l->partition, l->offset);
    else if (l->status == FERRY_DLQ_LEDGER_IN_PROGRESS)
        n = snprintf(buf, size,
                     "in-progress run=%s fp=%016" PRIx64 " at=%" PRId64 " count=%" PRId64,
                     l->run, l->fp, l->at_ms, l->count);
    else
        return -1;
    return n > 0 && (size_t)n < size ? 0 : -1;
}

/* "<topic>/<partition>/<offset>" */
static int parse_dest(const char *v, ferry_dlq_ledger *l)
{
    const char *s2 = strrchr(v, '/'), *s1;
    char num[32];
    int64_t p;
    size_t n;

    if (!s2 || s2 == v)
        return -1;
    for (s1 = s2 - 1; s1 > v && *s1 != '/'; s1--)
        ;
    if (*s1 != '/' || (n = (size_t)(s1 - v)) == 0 || n >= sizeof(l->topic))
        return -1;
    memcpy(l->topic, v, n);
    l->topic[n] = '\0';
    n = (size_t)(s2 - s1 - 1);
    if (n == 0 || n >= sizeof(num))
        return -1;
    memcpy(num, s1 + 1, n);
    num[n] = '\0';
    if (parse_i64(num, &p) || p < 0 || p > INT32_MAX || parse_i64(s2 + 1, &l->offset))
        return -1;
    l->partition = (int32_t)p;
    return 0;
}

int ferry_dlq_ledger_parse(const char *s, ferry_dlq_ledger *l)
{
    char buf[1024], *save = NULL, *tok;
    int have_fp = 0, have_to = 0;

    memset(l, 0, sizeof(*l));
    l->partition = -1;
    l->offset = -1;
    if (strlen(s) >= sizeof(buf))
        return -1;
    snprintf(buf, sizeof(buf), "%s", s);
    tok = strtok_r(buf, " ", &save);
    if (!tok)
        return -1;
    if (strcmp(tok, "done") == 0)
        l->status = FERRY_DLQ_LEDGER_DONE;
    else if (strcmp(tok, "in-progress") == 0)
        l->status = FERRY_DLQ_LEDGER_IN_PROGRESS;
    else
        return -1;
    while ((tok = strtok_r(NULL, " ", &save))) {
        char *eq = strchr(tok, '='), *end;
        if (!eq)
            goto bad;
        *eq++ = '\0';
        if (!strcmp(tok, "run")) {
            snprintf(l->run, sizeof(l->run), "%s", eq);
        } else if (!strcmp(tok, "fp")) {
            errno = 0;
            l->fp = strtoull(eq, &end, 16);
            if (errno || end == eq || *end)
                goto bad;
            have_fp = 1;
        } else if (!strcmp(tok, "at")) {
            if (parse_i64(eq, &l->at_ms))
                goto bad;
        } else if (!strcmp(tok, "count")) {
            if (parse_i64(eq, &l->count))
                goto bad;
        } else if (!strcmp(tok, "to")) {
            if (parse_dest(eq, l))
                goto bad;
            have_to = 1;
        } /* unknown fields: written by a newer version; ignore */
    }
    if (!have_fp || (l->status == FERRY_DLQ_LEDGER_DONE && !have_to))
        goto bad;
    return 0;
bad:
    memset(l, 0, sizeof(*l));
    l->status = FERRY_DLQ_LEDGER_NONE;
    return -1;
}

int ferry_dlq_topic_in_list(const char *list, const char *topic)
{
    const char *p = list;
    size_t tn = strlen(topic);
    while (p && *p) {
        const char *e = strchr(p, ',');
        const char *b = p, *z = e ? e : p + strlen(p);
        while (b < z && isspace((unsigned char)*b))
            b++;
        while (z > b && isspace((unsigned char)z[-1]))
            z--;
        if ((size_t)(z - b) == tn && tn > 0 && memcmp(b, topic, tn) == 0)
            return 1;
        p = e ? e + 1 : NULL;
    }
    return 0;
}

const char *ferry_dlq_action_name(ferry_dlq_action a)
{
    switch (a) {
    case FERRY_DLQ_REPLAY: return "ready";
    case FERRY_DLQ_SKIP_REPLAYED: return "replayed";
    case FERRY_DLQ_RECOVER: return "interrupted";
    case FERRY_DLQ_REFUSE_MAX_COUNT: return "at-max";
    case FERRY_DLQ_REFUSE_TOPIC: return "bad-topic";
    }
    return "?";
}

ferry_dlq_action ferry_dlq_decide(const ferry_dlq_record *r, const ferry_dlq_ledger *ledger,
                                  uint64_t fp, int64_t max_count, int force,
                                  const char *allowed_topics, const char *default_topic)
{
    int allowed;
    if (ledger && ledger->fp == fp) {
        if (ledger->status == FERRY_DLQ_LEDGER_DONE)
            return FERRY_DLQ_SKIP_REPLAYED;
        if (ledger->status == FERRY_DLQ_LEDGER_IN_PROGRESS)
            return FERRY_DLQ_RECOVER;
    }
    if (!r->original_topic[0])
        return FERRY_DLQ_REFUSE_TOPIC;
    if (allowed_topics && *allowed_topics)
        allowed = ferry_dlq_topic_in_list(allowed_topics, r->original_topic);
    else
        allowed = default_topic && strcmp(r->original_topic, default_topic) == 0;
    if (!allowed)
        return FERRY_DLQ_REFUSE_TOPIC;
    if (!force && (r->replay_count < 0 || r->replay_count >= max_count))
        return FERRY_DLQ_REFUSE_MAX_COUNT;
    return FERRY_DLQ_REPLAY;
}

rd_kafka_headers_t *ferry_dlq_replay_headers(const rd_kafka_headers_t *dlq, int64_t new_count,
                                             const char *from, int64_t now_ms)
{
    rd_kafka_headers_t *h = dlq ? rd_kafka_headers_copy(dlq) : rd_kafka_headers_new(4);
    char num[32];

    for (int i = 0; ferry_dlq_own_headers[i]; i++)
        rd_kafka_header_remove(h, ferry_dlq_own_headers[i]);
    rd_kafka_header_remove(h, FERRY_DLQ_H_REPLAYED_FROM);
    rd_kafka_header_remove(h, FERRY_DLQ_H_REPLAYED_AT);
    snprintf(num, sizeof(num), "%" PRId64, new_count);
    rd_kafka_header_add(h, FERRY_DLQ_H_REPLAY_COUNT, -1, num, -1);
    rd_kafka_header_add(h, FERRY_DLQ_H_REPLAYED_FROM, -1, from, -1);
    snprintf(num, sizeof(num), "%" PRId64, now_ms);
    rd_kafka_header_add(h, FERRY_DLQ_H_REPLAYED_AT, -1, num, -1);
    return h;
}

/* ---- display ----------------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (1..4), 0 if invalid; *cp receives it. */
static int utf8_seq(const unsigned char *s, uint32_t *cp)
{
    int n;
    uint32_t c;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        c = s[0] & 0x1f;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        c = s[0] & 0x0f;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        c = s[0] & 0x07;
    } else {
        return 0;
    }
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) ||
        (n == 4 && (c < 0x10000 || c > 0x10ffff)))
        return 0;
    *cp = c;
    return n;
}

size_t ferry_dlq_cell(const char *s, size_t max_cols, char *out, size_t size)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t total = 0, o = 0, chars = 0, keep;

    if (size == 0)
        return 0;
    /* First count, to know whether a cut is needed. */
    for (const unsigned char *q = p; *q;) {
        uint32_t cp;
        int n = utf8_seq(q, &cp);
        q += n ? n : 1;
        total++;
    }
    keep = max_cols && total > max_cols ? (max_cols > 3 ? max_cols - 3 : 0) : total;
    while (*p && chars < keep) {
        uint32_t cp = 0;
        int n = utf8_seq(p, &cp);
        if (n == 0) {
            if (o + 1 >= size)
                break;
            out[o++] = '?';
            p++;
        } else if (cp < 0x20 || cp == 0x7f || (cp >= 0x80 && cp < 0xa0)) {
            if (o + 1 >= size)
                break;
            out[o++] = ' ';
            p += n;
        } else {
            if (o + (size_t)n >= size)
                break;
            memcpy(out + o, p, (size_t)n);
            o += (size_t)n;
            p += n;
        }
        chars++;
    }
    if (keep < total) {
        size_t dots = max_cols < 3 ? max_cols : 3;
        for (size_t i = 0; i < dots && o + 1 < size; i++, chars++)
            out[o++] = '.';
    }
    out[o] = '\0';
    return chars;
}
