#include "ferry_log.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static struct {
    char program[64];
    char worker[128];
    ferry_log_level min;
    int json;
} L = {"ferry", "", FERRY_LOG_INFO, 1};

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *level_names[] = {"debug", "info", "warn", "error"};

void ferry_log_init(const char *program, const char *worker, ferry_log_level min,
                    ferry_log_format fmt)
{
    snprintf(L.program, sizeof(L.program), "%s", program ? program : "ferry");
    snprintf(L.worker, sizeof(L.worker), "%s", worker ? worker : "");
    L.min = min;
    if (fmt == FERRY_LOG_FMT_AUTO)
        L.json = !isatty(STDERR_FILENO);
    else
        L.json = fmt == FERRY_LOG_FMT_JSON;
}

void ferry_log_set_level(ferry_log_level min) { L.min = min; }

void ferry_log_set_worker(const char *worker)
{
    snprintf(L.worker, sizeof(L.worker), "%s", worker ? worker : "");
}

int ferry_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, level_names[i]) == 0)
            return i;
    if (s && strcmp(s, "warning") == 0)
        return FERRY_LOG_WARN;
    return -1;
}

int ferry_log_enabled(ferry_log_level lvl) { return lvl >= L.min; }

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if it is not one: overlong forms,
 * surrogates and code points past U+10FFFF are invalid too (as jansson requires). */
static size_t utf8_seq(const unsigned char *s)
{
    uint32_t cp;
    size_t n;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xC2 && s[0] <= 0xDF)
        n = 2, cp = s[0] & 0x1F;
    else if (s[0] >= 0xE0 && s[0] <= 0xEF)
        n = 3, cp = s[0] & 0x0F;
    else if (s[0] >= 0xF0 && s[0] <= 0xF4)
        n = 4, cp = s[0] & 0x07;
    else
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

/* Copies s into buf from off as valid UTF-8: each byte that does not start a valid
 * sequence becomes U+FFFD; with `controls`, control characters become '?' (text mode:
 * they would let hostile input forge log lines; JSON escapes them instead). Never splits
 * a sequence; NUL-terminates; truncates silently. Returns the new offset. */
static size_t utf8_clean(char *buf, size_t size, size_t off, const char *s, int controls)
{
    static const char replacement[] = "\xEF\xBF\xBD";
    const unsigned char *p = (const unsigned char *)s;

    while (*p) {
        size_t n = utf8_seq(p);
        const char *src = n ? (const char *)p : replacement;
        size_t len = n ? n : 3;
        if (off + len >= size)
            break;
        if (controls && n == 1 && (*p < 0x20 || *p == 0x7f))
            buf[off] = '?';
        else
            memcpy(buf + off, src, len);
        off += len;
        p += n ? n : 1;
    }
    if (off < size)
        buf[off] = '\0';
    return off;
}

static size_t append(char *buf, size_t size, size_t off, const char *s)
{
    size_t n = strlen(s);
    if (off >= size)
        return off;
    if (n > size - off - 1)
        n = size - off - 1;
    memcpy(buf + off, s, n);
    buf[off + n] = '\0';
    return off + n;
}

/* Adds key: s (made valid UTF-8) to o. */
static void set_str(json_t *o, const char *key, const char *s)
{
    char clean[3 * 2048]; /* msg (< 2048 bytes) with every byte replaced by U+FFFD */
    utf8_clean(clean, sizeof(clean), 0, s, 0);
    json_object_set_new(o, key, json_string(clean));
}

/* One JSON object and a newline, malloc'd; NULL only when out of memory. */
static char *json_line(const char *ts, ferry_log_level lvl, const ferry_log_ctx *ctx,
                       const char *msg)
{
    json_t *o = json_object();
    char *out = NULL, *line = NULL;
    size_t n;

    if (!o)
        return NULL;
    set_str(o, "ts", ts);
    set_str(o, "level", level_names[lvl]);
    set_str(o, "program", L.program);
    if (L.worker[0])
        set_str(o, "worker", L.worker);
    if (ctx && ctx->dataset)
        set_str(o, "dataset", ctx->dataset);
    if (ctx && ctx->event_id)
        set_str(o, "event_id", ctx->event_id);
    set_str(o, "msg", msg);
    out = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (out && (line = malloc((n = strlen(out)) + 2))) {
        memcpy(line, out, n);
        memcpy(line + n, "\n", 2);
    }
    free(out);
    return line;
}

void ferry_log_vwrite(ferry_log_level lvl, const ferry_log_ctx *ctx, const char *fmt,
                      va_list ap)
{
    char msg[2048], text[4096], ts[40];
    char *line = NULL;
    struct timespec now;
    struct tm tm;
    size_t off = 0;

    if (!ferry_log_enabled(lvl))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             now.tv_nsec / 1000000);

    if (L.json) {
        /* jansson escapes; a line it cannot build (out of memory) is still one object */
        if (!(line = json_line(ts, lvl, ctx, msg)))
            snprintf(text, sizeof(text),
                     "{\"ts\":\"%s\",\"level\":\"%s\",\"msg\":\"(out of "
                     "memory formatting a log line)\"}\n",
                     ts, level_names[lvl]);
    } else {
        off = append(text, sizeof(text), off, ts + 11); /* time of day is enough on a TTY */
        off = append(text, sizeof(text), off, " ");
        off = append(text, sizeof(text), off, level_names[lvl]);
        off = append(text, sizeof(text), off,
                     lvl == FERRY_LOG_INFO || lvl == FERRY_LOG_WARN ? "  " : " ");
        if (ctx && ctx->dataset) {
            off = append(text, sizeof(text), off, "[");
            off = utf8_clean(text, sizeof(text), off, ctx->dataset, 1);
            off = append(text, sizeof(text), off, "] ");
        }
        off = utf8_clean(text, sizeof(text), off, msg, 1);
        off = append(text, sizeof(text), off, "\n");
        if (off >= sizeof(text) - 1)
            text[sizeof(text) - 2] = '\n';
    }
    pthread_mutex_lock(&log_lock);
    fputs(line ? line : text, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
    free(line);
}

void ferry_log_write(ferry_log_level lvl, const ferry_log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry_log_vwrite(lvl, ctx, fmt, ap);
    va_end(ap);
}
