/* ferry_redis: see ferry_redis.h. hiredis conventions (c->err/c->errstr, NULL replies)
 * are translated into ferry_error right here and nowhere else. */
#include "ferry_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "ferry_log.h"

#define SCRIPT_CACHE_SLOTS 16

struct ferry_redis {
    ferry_redis_conf conf; /* private copy; password wiped on destroy */
    redisContext *ctx;     /* NULL when disconnected */
    int was_connected;     /* for logging the transition, once */
    char desc[300];
    struct {
        const ferry_redis_script *script;
        char sha[41];
        int no_load; /* SCRIPT LOAD refused by the ACL: always EVAL */
    } scripts[SCRIPT_CACHE_SLOTS];
};

/* ---- configuration ---------------------------------------------------------------- */

void ferry_redis_conf_init(ferry_redis_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    snprintf(conf->host, sizeof(conf->host), "127.0.0.1");
    conf->port = FERRY_REDIS_DEFAULT_PORT;
    conf->connect_timeout_ms = FERRY_REDIS_DEFAULT_CONNECT_TIMEOUT_MS;
    conf->command_timeout_ms = FERRY_REDIS_DEFAULT_COMMAND_TIMEOUT_MS;
}

void ferry_redis_conf_clear(ferry_redis_conf *conf)
{
    if (conf)
        explicit_bzero(conf->password, sizeof(conf->password));
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes s[0..n) into out (NUL-terminated). Refuses bad escapes, NUL and
 * control bytes, and results that do not fit. 0 ok, -1 bad, -2 too long. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (i + 2 >= n)
                return -1;
            hi = hexval(s[i + 1]);
            lo = hexval(s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
        if (c < 0x20 || c == 0x7f)
            return -1;
        if (o + 1 >= outsz)
            return -2;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Parses a decimal integer in [lo, hi] from s[0..n); n > 0, digits only. */
static int parse_bounded(const char *s, size_t n, long lo, long hi, long *out)
{
    long v = 0;

    if (n == 0 || n > 10)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int ferry_redis_conf_parse_url(ferry_redis_conf *conf, const char *url, char *errstr,
                               size_t errstr_size)
{
    static const char scheme[] = "redis://";
    ferry_redis_conf tmp;
    const char *p, *end, *at, *hostend, *host_s, *host_e, *portp = NULL;
    long v;
    int rc = -1;

    if (!url || !*url) {
        snprintf(errstr, errstr_size, "redis URL is empty");
        return -1;
    }
    if (strncmp(url, "rediss://", 9) == 0) {
        snprintf(errstr, errstr_size,
                 "rediss:// (TLS) is not supported: hiredis 0.14 has no TLS; use a local TLS "
                 "tunnel (e.g. stunnel) and a redis:// URL");
        return -1;
    }
    if (strncmp(url, scheme, sizeof(scheme) - 1) != 0) {
        snprintf(errstr, errstr_size, "redis URL must start with redis://");
        return -1;
    }
    tmp = *conf;
    p = url + sizeof(scheme) - 1;
    end = p + strlen(p);
    for (const char *q = p; q < end; q++) {
        if ((unsigned char)*q < 0x21 || *q == 0x7f) {
            snprintf(errstr, errstr_size, "redis URL contains a space or control character");
            goto out;
        }
    }
    if (strpbrk(p, "?#")) {
        snprintf(errstr, errstr_size, "redis URL: query and fragment are not supported");
        goto out;
    }

    /* userinfo ends at the last '@' before the path (a raw '@' in a password still works) */
    hostend = strchr(p, '/');
    if (!hostend)
        hostend = end;
    at = NULL;
    for (const char *q = p; q < hostend; q++)
        if (*q == '@')
            at = q;
    tmp.username[0] = '\0';
    tmp.password[0] = '\0';
    if (at) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        const char *uend = colon ? colon : at;
        int d = pct_decode(p, (size_t)(uend - p), tmp.username, sizeof(tmp.username));
        if (d != 0) {
            snprintf(errstr, errstr_size, "redis URL: %s user name",
                     d == -2 ? "too long" : "bad percent-encoding or control byte in");
            goto out;
        }
        if (colon) {
            d = pct_decode(colon + 1, (size_t)(at - colon - 1), tmp.password,
                           sizeof(tmp.password));
            if (d != 0) {
                /* never echo any part of the password */
                snprintf(errstr, errstr_size, "redis URL: %s password",
                         d == -2 ? "too long" : "bad percent-encoding or control byte in");
                goto out;
            }
        }
        p = at + 1;
    }

    /* host, [v6] or name */
    if (*p == '[') {
        const char *rb = memchr(p, ']', (size_t)(hostend - p));
        if (!rb) {
            snprintf(errstr, errstr_size, "redis URL: unterminated [IPv6] host");
            goto out;
        }
        host_s = p + 1;
        host_e = rb;
        if (rb + 1 < hostend) {
            if (rb[1] != ':') {
                snprintf(errstr, errstr_size, "redis URL: junk after [IPv6] host");
                goto out;
            }
            portp = rb + 2;
        }
    } else {
        const char *colon = memchr(p, ':', (size_t)(hostend - p));
        host_s = p;
        host_e = colon ? colon : hostend;
        if (colon)
            portp = colon + 1;
    }
    if (host_e == host_s) {
        snprintf(errstr, errstr_size, "redis URL: no host");
        goto out;
    }
    if ((size_t)(host_e - host_s) >= sizeof(tmp.host)) {
        snprintf(errstr, errstr_size, "redis URL: host name too long");
        goto out;
    }
    for (const char *q = host_s; q < host_e; q++) {
        if (*q == '@' || *q == '[' || *q == ']' || *q == '%' || (*q == ':' && *p != '[')) {
            snprintf(errstr, errstr_size, "redis URL: bad character in host");
            goto out;
        }
    }
    memcpy(tmp.host, host_s, (size_t)(host_e - host_s));
    tmp.host[host_e - host_s] = '\0';

    tmp.port = FERRY_REDIS_DEFAULT_PORT;
    if (portp) {
        if (parse_bounded(portp, (size_t)(hostend - portp), 1, 65535, &v) != 0) {
            snprintf(errstr, errstr_size, "redis URL: port must be 1..65535");
            goto out;
        }
        tmp.port = (int)v;
    }

    tmp.db = 0;
    if (hostend < end) { /* "/db" or "/" */
        const char *dbp = hostend + 1;
        if (dbp < end) {
            if (parse_bounded(dbp, (size_t)(end - dbp), 0, 1000000, &v) != 0) {
                snprintf(errstr, errstr_size, "redis URL: database must be a number after /");
                goto out;
            }
            tmp.db = (int)v;
        }
    }
    *conf = tmp;
    rc = 0;
out:
    explicit_bzero(tmp.password, sizeof(tmp.password));
    return rc;
}

int ferry_redis_conf_read_password_file(ferry_redis_conf *conf, const char *path, char *errstr,
                                        size_t errstr_size)
{
    char buf[sizeof(conf->password) + 2];
    size_t n = 0;
    ssize_t got;
    int fd, rc = -1;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(errstr, errstr_size, "redis password file %s: %s", path, strerror(errno));
        return -1;
    }
    /* read one byte more than fits, to tell "too long" from "exactly full" */
    while (n < sizeof(buf)) {
        got = read(fd, buf + n, sizeof(buf) - n);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(errstr, errstr_size, "redis password file %s: %s", path, strerror(errno));
            goto out;
        }
        if (got == 0)
            break;
        n += (size_t)got;
    }
    if (n > 0 && buf[n - 1] == '\n')
        n--;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    if (n == 0) {
        snprintf(errstr, errstr_size, "redis password file %s is empty", path);
        goto out;
    }
    if (n >= sizeof(conf->password)) {
        snprintf(errstr, errstr_size, "redis password file %s: password longer than %zu bytes",
                 path, sizeof(conf->password) - 1);
        goto out;
    }
    if (memchr(buf, '\0', n)) {
        snprintf(errstr, errstr_size, "redis password file %s contains a NUL byte", path);
        goto out;
    }
    memcpy(conf->password, buf, n);
    conf->password[n] = '\0';
    rc = 0;
out:
    explicit_bzero(buf, sizeof(buf));
    close(fd);
    return rc;
}

/* ---- handle ----------------------------------------------------------------------- */

ferry_redis *ferry_redis_new(const ferry_redis_conf *conf, char *errstr, size_t errstr_size)
{
    ferry_redis *r;

    if (!conf->host[0] || memchr(conf->host, '\0', sizeof(conf->host)) == NULL) {
        snprintf(errstr, errstr_size, "redis: no host");
        return NULL;
    }
    if (conf->port < 1 || conf->port > 65535) {
        snprintf(errstr, errstr_size, "redis: port %d out of range 1..65535", conf->port);
        return NULL;
    }
    if (conf->db < 0) {
        snprintf(errstr, errstr_size, "redis: database %d is negative", conf->db);
        return NULL;
    }
    if (conf->connect_timeout_ms <= 0 || conf->command_timeout_ms <= 0) {
        snprintf(errstr, errstr_size, "redis: timeouts must be positive");
        return NULL;
    }
    if (memchr(conf->username, '\0', sizeof(conf->username)) == NULL ||
        memchr(conf->password, '\0', sizeof(conf->password)) == NULL) {
        snprintf(errstr, errstr_size, "redis: user name or password not terminated");
        return NULL;
    }
    if (conf->username[0] && !conf->password[0]) {
        snprintf(errstr, errstr_size,
                 "redis: user \"%s\" given without a password (set it in the URL or a "
                 "password file)",
                 conf->username);
        return NULL;
    }
    r = calloc(1, sizeof(*r));
    if (!r) {
        snprintf(errstr, errstr_size, "redis: out of memory");
        return NULL;
    }
    r->conf = *conf;
    if (strchr(conf->host, ':'))
        snprintf(r->desc, sizeof(r->desc), "[%s]:%d/%d", conf->host, conf->port, conf->db);
    else
        snprintf(r->desc, sizeof(r->desc), "%s:%d/%d", conf->host, conf->port, conf->db);
    return r;
}

static void drop_connection(ferry_redis *r)
{
    if (r->ctx) {
        redisFree(r->ctx);
        r->ctx = NULL;
    }
}

void ferry_redis_destroy(ferry_redis *r)
{
    if (!r)
        return;
    drop_connection(r);
    explicit_bzero(&r->conf, sizeof(r->conf));
    free(r);
}

const char *ferry_redis_describe(const ferry_redis *r) { return r->desc; }

static struct timeval ms_to_tv(int ms)
{
    struct timeval tv;
    tv.tv_sec = ms / 1000;
    tv.tv_usec = (ms % 1000) * 1000;
    return tv;
}

/* Called with a failed hiredis call's context: classify, drop it, RETRYABLE.
 * saved_errno is errno right after the call (hiredis leaves it from the syscall). */
static ferry_rc lost_connection(ferry_redis *r, const char *what, int saved_errno,
                                ferry_error *err)
{
    char detail[160];
    redisContext *c = r->ctx;

    if (c && c->err == REDIS_ERR_IO && (saved_errno == EAGAIN || saved_errno == EWOULDBLOCK))
        snprintf(detail, sizeof(detail), "timed out after %d ms", r->conf.command_timeout_ms);
    else if (c && c->err)
        snprintf(detail, sizeof(detail), "%s", c->errstr);
    else
        snprintf(detail, sizeof(detail), "connection lost");
    drop_connection(r);
    if (r->was_connected) {
        r->was_connected = 0;
        ferry_warn(NULL, "redis %s: connection lost (%s); will reconnect", r->desc, detail);
    }
    return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS, "redis %s: %s: %s",
                           r->desc, what, detail);
}

/* The first word of an error reply ("WRONGTYPE Operation against ..." -> WRONGTYPE). */
static int err_is(const redisReply *rep, const char *code)
{
    size_t n = strlen(code);
    return rep->len >= n && strncmp(rep->str, code, n) == 0 &&
           (rep->len == n || rep->str[n] == ' ');
}

/* Classifies an error reply. Sets *drop when the connection should be replaced. */
static ferry_rc classify_error_reply(ferry_redis *r, const redisReply *rep, const char *what,
                                     int *drop, ferry_error *err)
{
    static const char *const retryable[] = {"LOADING",  "BUSY",        "MASTERDOWN",
                                            "TRYAGAIN", "CLUSTERDOWN", "READONLY",
                                            "OOM",      "NOREPLICAS",  NULL};
    int len = rep->len > 300 ? 300 : (int)rep->len;

    *drop = 0;
    for (int i = 0; retryable[i]; i++) {
        if (err_is(rep, retryable[i])) {
            *drop = err_is(rep, "READONLY"); /* a replica after failover: find the master */
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS,
                                   "redis %s: %s: %.*s", r->desc, what, len, rep->str);
        }
    }
    if (rep->len >= 27 && strncmp(rep->str, "ERR max number of clients", 25) == 0) {
        *drop = 1;
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS, "redis %s: %s: %.*s",
                               r->desc, what, len, rep->str);
    }
    /* A script's redis.call refused by the ACL is the same configuration problem as a
     * NOPERM reply (Redis 7 words it differently): wait for a fix, never dead-letter. */
    if (err_is(rep, "NOAUTH") || err_is(rep, "WRONGPASS") || err_is(rep, "NOPERM") ||
        (rep->len > 40 && strstr(rep->str, "user executing the script can't run"))) {
        /* NOAUTH mid-session: the server restarted with a password; AUTH again */
        *drop = err_is(rep, "NOAUTH");
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_CONFIG,
                               "redis %s: %s: %.*s (check the Redis user, password and ACL)",
                               r->desc, what, len, rep->str);
    }
    return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_REDIS, "redis %s: %s: %.*s",
                           r->desc, what, len, rep->str);
}

/* One round trip on the current connection, no reconnect. On OK *reply may be an error
 * reply (the caller classifies). */
static ferry_rc roundtrip(ferry_redis *r, const char *what, int argc, const char **argv,
                          const size_t *argvlen, redisReply **reply, ferry_error *err)
{
    void *rep;
    int saved_errno;

    errno = 0;
    rep = redisCommandArgv(r->ctx, argc, argv, argvlen);
    saved_errno = errno;
    if (!rep)
        return lost_connection(r, what, saved_errno, err);
    *reply = rep;
    return FERRY_OK;
}

/* A connect-time command (AUTH, SELECT) whose error reply means misconfiguration. */
static ferry_rc setup_command(ferry_redis *r, const char *what, int argc, const char **argv,
                              ferry_error *err)
{
    redisReply *rep = NULL;
    ferry_rc rc = roundtrip(r, what, argc, argv, NULL, &rep, err);
    int drop;

    if (rc != FERRY_OK)
        return rc;
    if (rep->type == REDIS_REPLY_ERROR) {
        rc = classify_error_reply(r, rep, what, &drop, err);
        if (rc == FERRY_ERR_PERMANENT) { /* e.g. "ERR DB index is out of range" */
            int len = rep->len > 300 ? 300 : (int)rep->len;
            rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_CONFIG,
                                 "redis %s: %s: %.*s", r->desc, what, len, rep->str);
        }
        drop_connection(r); /* never keep a half-set-up connection */
    }
    freeReplyObject(rep);
    return rc;
}

static ferry_rc connect_now(ferry_redis *r, ferry_error *err)
{
    redisContext *c;
    int saved_errno;
    ferry_rc rc;

    errno = 0;
    c = redisConnectWithTimeout(r->conf.host, r->conf.port,
                                ms_to_tv(r->conf.connect_timeout_ms));
    saved_errno = errno;
    if (!c)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS,
                               "redis %s: connect: out of memory", r->desc);
    if (c->err) {
        const char *detail = c->errstr;
        char buf[160];
        if (saved_errno == ETIMEDOUT || strstr(detail, "timed out")) {
            snprintf(buf, sizeof(buf), "timed out after %d ms", r->conf.connect_timeout_ms);
            detail = buf;
        }
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS, "redis %s: connect: %s",
                             r->desc, detail);
        redisFree(c);
        return rc;
    }
    r->ctx = c;
    if (redisSetTimeout(c, ms_to_tv(r->conf.command_timeout_ms)) != REDIS_OK)
        return lost_connection(r, "connect: set timeout", errno, err);
    (void)redisEnableKeepAlive(c); /* best effort: notices a dead peer on idle connections */

    if (r->conf.password[0]) {
        const char *av[3] = {"AUTH", NULL, NULL};
        int ac;
        if (r->conf.username[0]) {
            av[1] = r->conf.username;
            av[2] = r->conf.password;
            ac = 3;
        } else {
            av[1] = r->conf.password;
            ac = 2;
        }
        rc = setup_command(r, "AUTH", ac, av, err);
        if (rc != FERRY_OK)
            return rc;
    }
    if (r->conf.db > 0) {
        char db[16];
        const char *av[2] = {"SELECT", db};
        snprintf(db, sizeof(db), "%d", r->conf.db);
        rc = setup_command(r, "SELECT", 2, av, err);
        if (rc != FERRY_OK)
            return rc;
    }
    if (!r->was_connected) {
        r->was_connected = 1;
        ferry_info(NULL, "redis %s: connected", r->desc);
    }
    return FERRY_OK;
}

/* An idle connection should have nothing to read. If it is readable or hung up, the
 * server closed it (restart, CLIENT KILL, timeout): replace it before sending, while
 * nothing has been sent and a retry is still harmless. */
static int connection_looks_dead(redisContext *c)
{
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN | POLLRDHUP};
    int n;

    do
        n = poll(&pfd, 1, 0);
    while (n < 0 && errno == EINTR);
    return n != 0;
}

static ferry_rc ensure_connected(ferry_redis *r, ferry_error *err)
{
    if (r->ctx && connection_looks_dead(r->ctx)) {
        ferry_debug(NULL, "redis %s: idle connection closed by the server; reconnecting",
                    r->desc);
        drop_connection(r);
    }
    if (r->ctx)
        return FERRY_OK;
    return connect_now(r, err);
}

/* Runs a command; an error reply comes back as *reply, unclassified. */
static ferry_rc command_raw(ferry_redis *r, const char *what, int argc, const char **argv,
                            const size_t *argvlen, redisReply **reply, ferry_error *err)
{
    ferry_rc rc;

    *reply = NULL;
    rc = ensure_connected(r, err);
    if (rc != FERRY_OK)
        return rc;
    return roundtrip(r, what, argc, argv, argvlen, reply, err);
}

static ferry_rc finish_reply(ferry_redis *r, const char *what, redisReply **reply,
                             ferry_error *err)
{
    int drop;
    ferry_rc rc;

    if ((*reply)->type != REDIS_REPLY_ERROR)
        return FERRY_OK;
    rc = classify_error_reply(r, *reply, what, &drop, err);
    freeReplyObject(*reply);
    *reply = NULL;
    if (drop)
        drop_connection(r);
    return rc;
}

ferry_rc ferry_redis_command(ferry_redis *r, int argc, const char **argv, const size_t *argvlen,
                             redisReply **reply, ferry_error *err)
{
    char what[40];
    ferry_rc rc;

    *reply = NULL;
    if (argc < 1 || !argv || !argv[0])
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "redis: empty command");
    /* the command name only, never its arguments */
    snprintf(what, sizeof(what), "%.*s",
             argvlen ? (int)(argvlen[0] < 32 ? argvlen[0] : 32) : 32, argv[0]);
    rc = command_raw(r, what, argc, argv, argvlen, reply, err);
    if (rc != FERRY_OK)
        return rc;
    return finish_reply(r, what, reply, err);
}

ferry_rc ferry_redis_ping(ferry_redis *r, ferry_error *err)
{
    const char *av[1] = {"PING"};
    redisReply *rep = NULL;
    ferry_rc rc = ferry_redis_command(r, 1, av, NULL, &rep, err);

    freeReplyObject(rep);
    return rc;
}

/* ---- scripts ---------------------------------------------------------------------- */

static int script_slot(ferry_redis *r, const ferry_redis_script *s)
{
    for (int i = 0; i < SCRIPT_CACHE_SLOTS; i++)
        if (r->scripts[i].script == s)
            return i;
    for (int i = 0; i < SCRIPT_CACHE_SLOTS; i++) {
        if (!r->scripts[i].script) {
            r->scripts[i].script = s;
            r->scripts[i].sha[0] = '\0';
            r->scripts[i].no_load = 0;
            return i;
        }
    }
    return -1; /* cache full: EVAL every time, still correct */
}

#define EVAL_MAX_ARGS 32

ferry_rc ferry_redis_eval(ferry_redis *r, const ferry_redis_script *script, int numkeys,
                          int argc, const char **argv, redisReply **reply, ferry_error *err)
{
    const char *av[EVAL_MAX_ARGS + 3];
    char nk[16], what[80];
    int slot;
    ferry_rc rc;

    *reply = NULL;
    if (argc < 0 || argc > EVAL_MAX_ARGS || numkeys < 0 || numkeys > argc)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL,
                               "redis: script %s: bad argument count", script->name);
    snprintf(nk, sizeof(nk), "%d", numkeys);
    snprintf(what, sizeof(what), "script %s", script->name);
    for (int i = 0; i < argc; i++)
        av[3 + i] = argv[i];
    av[2] = nk;

    slot = script_slot(r, script);
    if (slot >= 0 && !r->scripts[slot].sha[0] && !r->scripts[slot].no_load) {
        const char *load[3] = {"SCRIPT", "LOAD", script->body};
        rc = command_raw(r, what, 3, load, NULL, reply, err);
        if (rc != FERRY_OK)
            return rc;
        if ((*reply)->type == REDIS_REPLY_STRING && (*reply)->len == 40) {
            memcpy(r->scripts[slot].sha, (*reply)->str, 40);
            r->scripts[slot].sha[40] = '\0';
        } else if ((*reply)->type == REDIS_REPLY_ERROR && err_is(*reply, "NOPERM")) {
            r->scripts[slot].no_load = 1; /* an ACL with eval but not script|load */
        } else if ((*reply)->type == REDIS_REPLY_ERROR) {
            return finish_reply(r, what, reply, err); /* compile error, LOADING, ... */
        }
        freeReplyObject(*reply);
        *reply = NULL;
    }
    if (slot >= 0 && r->scripts[slot].sha[0]) {
        av[0] = "EVALSHA";
        av[1] = r->scripts[slot].sha;
        rc = command_raw(r, what, argc + 3, av, NULL, reply, err);
        if (rc != FERRY_OK)
            return rc;
        if ((*reply)->type != REDIS_REPLY_ERROR || !err_is(*reply, "NOSCRIPT"))
            return finish_reply(r, what, reply, err);
        freeReplyObject(*reply); /* server lost its script cache: EVAL loads it again */
        *reply = NULL;
    }
    av[0] = "EVAL";
    av[1] = script->body;
    rc = command_raw(r, what, argc + 3, av, NULL, reply, err);
    if (rc != FERRY_OK)
        return rc;
    return finish_reply(r, what, reply, err);
}
