/* ferry_redis: one Redis connection (hiredis 0.14.1, RESP2, plain TCP) that reconnects by
 * itself, and classifies every failure at the boundary.
 *
 * Threads: a ferry_redis handle is used by ONE thread at a time (hiredis contexts are not
 * thread-safe); a program opens one handle per thread that talks to Redis.
 *
 * Reconnection: ferry_redis_new() does not connect. Every command connects first if the
 * handle has no connection (connect, AUTH, SELECT). A command that fails on a broken
 * connection frees it and returns FERRY_ERR_RETRYABLE (class "redis"); the next call
 * reconnects. Before sending, an idle connection the server has closed (restart, CLIENT
 * KILL, idle timeout) is noticed and replaced, so that case costs no failed call. A
 * command whose reply was lost is never re-sent by this module: it may have run.
 *
 * SIGPIPE: hiredis 0.14 writes with write(2); a program using this module must ignore
 * SIGPIPE (signal(SIGPIPE, SIG_IGN) in main), or a server closing the socket at the wrong
 * moment kills the process instead of returning an error.
 *
 * Secrets: the password is never logged, never put in an error message, and wiped from
 * the handle on destroy. Command arguments are never logged either. */
#ifndef FERRY_REDIS_H
#define FERRY_REDIS_H

#include <stddef.h>

#include <hiredis/hiredis.h>

#include "ferry_error.h"

#define FERRY_REDIS_DEFAULT_PORT 6379
#define FERRY_REDIS_DEFAULT_CONNECT_TIMEOUT_MS 2000
#define FERRY_REDIS_DEFAULT_COMMAND_TIMEOUT_MS 5000

/* Connection settings. Plain arrays, so the struct can be copied and needs no freeing;
 * call ferry_redis_conf_clear() when done to wipe the password. */
typedef struct ferry_redis_conf {
    char host[256];         /* name, IPv4 or IPv6 literal (without brackets) */
    int port;               /* 1..65535 */
    int db;                 /* SELECTed after connecting when > 0 */
    char username[256];     /* ACL user; "" = AUTH with password only (the default user) */
    char password[512];     /* "" = no AUTH */
    int connect_timeout_ms; /* > 0 */
    int command_timeout_ms; /* > 0; also bounds each reply read */
} ferry_redis_conf;

/* Defaults: host 127.0.0.1, port 6379, db 0, no auth, timeouts as above. */
void ferry_redis_conf_init(ferry_redis_conf *conf);

/* Parses redis://[user[:password]@]host[:port][/db] into conf (host, port, db, username,
 * password; timeouts are left alone). user and password may be percent-encoded.
 *   redis://h:6379          no AUTH
 *   redis://:pw@h:6379      AUTH pw            (default user)
 *   redis://u:pw@h:6379/2   AUTH u pw, SELECT 2
 *   redis://u@h:6379        AUTH u <password>  (password from a file, see below)
 * rediss:// is refused: hiredis 0.14 has no TLS (use a local TLS tunnel). Returns 0, or -1
 * with errstr filled (the message never contains the password). On error conf is left
 * unchanged. */
int ferry_redis_conf_parse_url(ferry_redis_conf *conf, const char *url, char *errstr,
                               size_t errstr_size);

/* Reads the password from a file (Kubernetes secret, systemd credential); one trailing
 * "\n" or "\r\n" is removed. Refuses an empty file, a file longer than the password field
 * and NUL bytes. Returns 0 or -1 with errstr filled. */
int ferry_redis_conf_read_password_file(ferry_redis_conf *conf, const char *path, char *errstr,
                                        size_t errstr_size);

/* Wipes the password (explicit_bzero). */
void ferry_redis_conf_clear(ferry_redis_conf *conf);

typedef struct ferry_redis ferry_redis;

/* Validates and copies conf; does not connect (see above). Returns NULL with errstr
 * filled on a configuration error (bad port, username without password, ...). */
ferry_redis *ferry_redis_new(const ferry_redis_conf *conf, char *errstr, size_t errstr_size);
/* Closes the connection and wipes the copied password. NULL-safe. */
void ferry_redis_destroy(ferry_redis *r);

/* Runs one command given as an argument vector (argvlen may be NULL: strlen is used).
 * On FERRY_OK *reply is a non-error reply the caller frees with freeReplyObject().
 * On failure *reply is NULL and err says why:
 *   RETRYABLE "redis"   connect refused/reset/timeout, reply lost, LOADING, BUSY,
 *                       MASTERDOWN, TRYAGAIN, CLUSTERDOWN, READONLY, OOM, max clients
 *   RETRYABLE "config"  AUTH/SELECT refused (WRONGPASS, NOAUTH, NOPERM on connect): the
 *                       fleet's credentials, not the event, are wrong -- never dead-letter
 *                       for it; a program may check this class at startup and exit 2
 *   PERMANENT "redis"   any other error reply (WRONGTYPE, ERR ..., script errors)
 * The error text from the server is included in err->msg; arguments never are. */
ferry_rc ferry_redis_command(ferry_redis *r, int argc, const char **argv, const size_t *argvlen,
                             redisReply **reply, ferry_error *err);

/* PING; connects if needed. For readiness checks and startup. */
ferry_rc ferry_redis_ping(ferry_redis *r, ferry_error *err);

/* A Lua script kept as a C string constant. Both pointers must stay valid for the life of
 * every handle that runs it (use static storage). */
typedef struct ferry_redis_script {
    const char *name; /* for error messages */
    const char *body;
} ferry_redis_script;

/* Runs a script: EVALSHA with the SHA1 the server returned from SCRIPT LOAD (remembered
 * per handle), falling back to EVAL when the server answers NOSCRIPT (restart, SCRIPT
 * FLUSH, failover). argv holds numkeys keys followed by the script's arguments. Reply and
 * error handling as ferry_redis_command(); a Lua error is PERMANENT "redis". */
ferry_rc ferry_redis_eval(ferry_redis *r, const ferry_redis_script *script, int numkeys,
                          int argc, const char **argv, redisReply **reply, ferry_error *err);

/* "host:port/db" for log lines; never the user or password. Valid while r lives. */
const char *ferry_redis_describe(const ferry_redis *r);

#endif
