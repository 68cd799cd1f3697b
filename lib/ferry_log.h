/* ferry_log: one JSON object per line on stderr (or readable text on a TTY).
 * Fields: ts, level, program, worker, msg, and dataset/event_id when the line is about
 * a migration. Never pass a secret. Thread-safe: any thread may log. */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include <stdarg.h>

typedef enum {
    FERRY_LOG_DEBUG = 0,
    FERRY_LOG_INFO = 1,
    FERRY_LOG_WARN = 2,
    FERRY_LOG_ERROR = 3,
} ferry_log_level;

typedef enum { FERRY_LOG_FMT_AUTO, FERRY_LOG_FMT_JSON, FERRY_LOG_FMT_TEXT } ferry_log_format;

/* What a log line is about; either field may be NULL. Borrowed for the call only. */
typedef struct ferry_log_ctx {
    const char *dataset;
    const char *event_id;
} ferry_log_ctx;

/* Call once from main() before other threads start. program/worker are copied. */
void ferry_log_init(const char *program, const char *worker, ferry_log_level min,
                    ferry_log_format fmt);
void ferry_log_set_level(ferry_log_level min);
/* Sets the worker field of later lines (copied). Call before other threads start. */
void ferry_log_set_worker(const char *worker);
/* Parses "debug|info|warn|error"; returns -1 if unknown. */
int ferry_log_level_parse(const char *s);
int ferry_log_enabled(ferry_log_level lvl);

void ferry_log_write(ferry_log_level lvl, const ferry_log_ctx *ctx, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ferry_log_vwrite(ferry_log_level lvl, const ferry_log_ctx *ctx, const char *fmt,
                      va_list ap) __attribute__((format(printf, 3, 0)));

/* Level checked before the arguments are formatted. */
#define FERRY_LOG(lvl, ctx, ...)                                                               \
    do {                                                                                       \
        if (ferry_log_enabled(lvl))                                                            \
            ferry_log_write((lvl), (ctx), __VA_ARGS__);                                        \
    } while (0)
#define ferry_debug(ctx, ...) FERRY_LOG(FERRY_LOG_DEBUG, ctx, __VA_ARGS__)
#define ferry_info(ctx, ...) FERRY_LOG(FERRY_LOG_INFO, ctx, __VA_ARGS__)
#define ferry_warn(ctx, ...) FERRY_LOG(FERRY_LOG_WARN, ctx, __VA_ARGS__)
#define ferry_err(ctx, ...) FERRY_LOG(FERRY_LOG_ERROR, ctx, __VA_ARGS__)

#endif
