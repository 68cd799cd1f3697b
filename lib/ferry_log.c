#include "ferry_log.h"

#include <pthread.h>
#include <stdio.h>
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

/* Appends s JSON-escaped to buf; always NUL-terminates, truncates silently. */
static size_t json_escape(char *buf, size_t size, size_t off, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    for (; *s && off + 7 < size; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            buf[off++] = '\\';
            buf[off++] = (char)c;
        } else if (c == '\n') {
            buf[off++] = '\\';
            buf[off++] = 'n';
        } else if (c < 0x20 || c == 0x7f) {
            buf[off++] = '\\';
            buf[off++] = 'u';
            buf[off++] = '0';
            buf[off++] = '0';
            buf[off++] = hex[c >> 4];
            buf[off++] = hex[c & 15];
        } else {
            buf[off++] = (char)c;
        }
    }
    if (off < size)
        buf[off] = '\0';
    return off;
}

/* Text mode: control characters would let hostile input forge log lines. */
static size_t text_sanitize(char *buf, size_t size, size_t off, const char *s)
{
    for (; *s && off + 2 < size; s++) {
        unsigned char c = (unsigned char)*s;
        buf[off++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
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

void ferry_log_vwrite(ferry_log_level lvl, const ferry_log_ctx *ctx, const char *fmt, va_list ap)
{
    char msg[2048], line[4096], ts[40];
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
        off = append(line, sizeof(line), off, "{\"ts\":\"");
        off = append(line, sizeof(line), off, ts);
        off = append(line, sizeof(line), off, "\",\"level\":\"");
        off = append(line, sizeof(line), off, level_names[lvl]);
        off = append(line, sizeof(line), off, "\",\"program\":\"");
        off = json_escape(line, sizeof(line), off, L.program);
        if (L.worker[0]) {
            off = append(line, sizeof(line), off, "\",\"worker\":\"");
            off = json_escape(line, sizeof(line), off, L.worker);
        }
        if (ctx && ctx->dataset) {
            off = append(line, sizeof(line), off, "\",\"dataset\":\"");
            off = json_escape(line, sizeof(line), off, ctx->dataset);
        }
        if (ctx && ctx->event_id) {
            off = append(line, sizeof(line), off, "\",\"event_id\":\"");
            off = json_escape(line, sizeof(line), off, ctx->event_id);
        }
        off = append(line, sizeof(line), off, "\",\"msg\":\"");
        off = json_escape(line, sizeof(line), off, msg);
        off = append(line, sizeof(line), off, "\"}\n");
        /* A truncated line must still end the JSON object and the line. */
        if (off >= sizeof(line) - 1)
            memcpy(line + sizeof(line) - 4, "\"}\n", 4);
    } else {
        off = append(line, sizeof(line), off, ts + 11); /* time of day is enough on a TTY */
        off = append(line, sizeof(line), off, " ");
        off = append(line, sizeof(line), off, level_names[lvl]);
        off = append(line, sizeof(line), off, lvl == FERRY_LOG_INFO || lvl == FERRY_LOG_WARN ? "  " : " ");
        if (ctx && ctx->dataset) {
            off = append(line, sizeof(line), off, "[");
            off = text_sanitize(line, sizeof(line), off, ctx->dataset);
            off = append(line, sizeof(line), off, "] ");
        }
        off = text_sanitize(line, sizeof(line), off, msg);
        off = append(line, sizeof(line), off, "\n");
        if (off >= sizeof(line) - 1)
            line[sizeof(line) - 2] = '\n';
    }
    pthread_mutex_lock(&log_lock);
    fputs(line, stderr);
    fflush(stderr);
    pthread_mutex_unlock(&log_lock);
}

void ferry_log_write(ferry_log_level lvl, const ferry_log_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ferry_log_vwrite(lvl, ctx, fmt, ap);
    va_end(ap);
}
