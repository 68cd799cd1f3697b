/* ferry_http: a small embedded HTTP/1.1 server (libmicrohttpd) for ferry's programs --
 * the producer's ingest and status API today, /metrics, /healthz and /readyz tomorrow.
 *
 * Usage (error handling left out):
 *
 *     ferry_http_conf hc;
 *     ferry_http_conf_init(&hc);
 *     hc.listen = "127.0.0.1:8080";            // "ADDR:PORT", "[v6]:PORT"; port 0 = any
 *     ferry_http *h = ferry_http_new(&hc, errstr, sizeof(errstr));
 *     ferry_http_set_bearer_token(h, token, strlen(token));      // optional
 *     ferry_http_route(h, "GET", "/healthz", 0, healthz, ctx);
 *     ferry_http_route(h, "POST", "/v1/events", FERRY_HTTP_AUTH, ingest, ctx);
 *     ferry_http_route(h, "GET", "/v1/datasets/", FERRY_HTTP_PREFIX | FERRY_HTTP_AUTH,
 *                      dataset, ctx);
 *     ferry_http_start(h, errstr, sizeof(errstr));
 *     ...
 *     ferry_http_destroy(h);                   // stops; waits for running handlers
 *
 *     static void healthz(ferry_http_req *req, void *ctx)
 *     {
 *         ferry_http_reply(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
 *     }
 *
 * What the server does before a handler runs (so every handler gets it for free):
 *   - routing: the first route (in registration order) whose path matches -- exactly, or
 *     as a prefix with FERRY_HTTP_PREFIX -- and whose method matches; a path that matches
 *     only with another method gets 405 (with Allow), no path 404;
 *   - FERRY_HTTP_AUTH: "Authorization: Bearer <token>" compared in constant time (SHA-256
 *     of both sides, then ferry_ct_memcmp) with the token set by ferry_http_set_bearer_token;
 *     401 (WWW-Authenticate: Bearer) before any body byte is read. A route with the flag
 *     on a server without a token is open (the program decides whether that is allowed);
 *   - body limit: Content-Length above conf.max_body_bytes gets 413 at once; a chunked
 *     body growing past it is drained and answered 413; the handler never sees it.
 * Error replies are JSON: {"error":"<code>","message":"<text>"}.
 *
 * Handlers run on libmicrohttpd's connection threads (one thread per connection, at most
 * conf.max_connections), so several run at once: they must be thread-safe, and they may
 * block (e.g. waiting for a Kafka acknowledgement). A handler answers with exactly one of
 * the ferry_http_reply*() calls; a handler that answers nothing gets 500. The request and
 * everything read from it are valid only during the handler call. */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stdarg.h>
#include <stddef.h>

#include <jansson.h>

typedef struct ferry_http_conf {
    const char *listen;       /* "ADDR:PORT"; copied by ferry_http_new */
    size_t max_body_bytes;    /* default 64 KiB */
    unsigned max_connections; /* default 64 */
    unsigned timeout_s;       /* idle connection timeout, default 30 */
} ferry_http_conf;

void ferry_http_conf_init(ferry_http_conf *conf);

typedef struct ferry_http ferry_http;
typedef struct ferry_http_req ferry_http_req;

typedef void (*ferry_http_handler)(ferry_http_req *req, void *opaque);

/* Route flags. */
#define FERRY_HTTP_PREFIX 0x1 /* path is a prefix ("/v1/datasets/" matches "/v1/datasets/x") */
#define FERRY_HTTP_AUTH 0x2   /* bearer token required (see above) */

/* Parses conf.listen (numeric address only: no DNS at startup). Does not bind yet.
 * NULL + errstr on a bad address or out of memory. */
ferry_http *ferry_http_new(const ferry_http_conf *conf, char *errstr, size_t errstr_size);

/* Stops the server (if started), waits for handlers that are running, frees. NULL-safe. */
void ferry_http_destroy(ferry_http *h);

/* The token FERRY_HTTP_AUTH routes require; only its SHA-256 is kept. Before start.
 * Returns 0, or -1 for an empty token. */
int ferry_http_set_bearer_token(ferry_http *h, const char *token, size_t len);

/* Adds a route (method e.g. "GET"; path starts with "/"). Before start; the strings are
 * copied; opaque is passed to fn. Returns 0, or -1 (bad arguments, out of memory). */
int ferry_http_route(ferry_http *h, const char *method, const char *path, unsigned flags,
                     ferry_http_handler fn, void *opaque);

/* Observes every reply the server sends -- the handlers' and its own (401, 404, 405, 413,
 * 500) -- e.g. to count requests by status for /metrics. One hook per server; before
 * start. fn runs on the connection's thread, after the reply is decided and before it is
 * sent; it must be thread-safe and quick. Returns 0, or -1 after start. */
typedef void (*ferry_http_reply_hook)(const ferry_http_req *req, int status, void *opaque);
int ferry_http_on_reply(ferry_http *h, ferry_http_reply_hook fn, void *opaque);

/* Binds and starts serving. Returns 0, or -1 + errstr (address in use, ...). */
int ferry_http_start(ferry_http *h, char *errstr, size_t errstr_size);

/* The bound port (useful with port 0), 0 if not started. */
unsigned ferry_http_port(const ferry_http *h);

/* ---- inside a handler ------------------------------------------------------------- */

const char *ferry_http_req_method(const ferry_http_req *req);
/* The path without the query string, e.g. "/v1/datasets/sales.orders". */
const char *ferry_http_req_path(const ferry_http_req *req);
/* What follows the route's prefix ("sales.orders" for route "/v1/datasets/"); "" for an
 * exact route. */
const char *ferry_http_req_path_rest(const ferry_http_req *req);
/* A request header (case-insensitive name) or query argument; NULL if absent. */
const char *ferry_http_req_header(const ferry_http_req *req, const char *name);
const char *ferry_http_req_query(const ferry_http_req *req, const char *name);
/* The body (not NUL-terminated; len 0 if none). At most conf.max_body_bytes. */
const char *ferry_http_req_body(const ferry_http_req *req, size_t *len);

/* Parses the body as one JSON value: refuses a Content-Type other than application/json
 * (415), nesting deeper than max_depth (400, checked before the parser runs), invalid
 * JSON, duplicate object keys, "\u0000" in strings (400). On failure it has already
 * replied and returns NULL; on success the caller owns the returned reference. */
json_t *ferry_http_req_json(ferry_http_req *req, int max_depth);

/* Replies. body is copied; content_type NULL means application/json. */
void ferry_http_reply(ferry_http_req *req, int status, const char *content_type,
                      const void *body, size_t len);
/* Serialises obj (compact) and replies with it; steals the reference. */
void ferry_http_reply_json(ferry_http_req *req, int status, json_t *obj);
/* {"error":code,"message":<formatted>}. */
void ferry_http_reply_error(ferry_http_req *req, int status, const char *code, const char *fmt,
                            ...) __attribute__((format(printf, 4, 5)));
/* Adds a header to the reply that is sent (call before a reply). Copied. Returns 0/-1. */
int ferry_http_add_header(ferry_http_req *req, const char *name, const char *value);

/* ---- helpers (pure; any thread) -------------------------------------------------- */

/* Deepest nesting of objects/arrays in a JSON text, without parsing it fully (strings
 * and escapes are skipped correctly). Stops counting once above limit and returns
 * limit + 1. Malformed text still yields a number; the parser rejects it afterwards. */
int ferry_http_json_depth(const char *text, size_t len, int limit);

/* The routes every ferry program with an HTTP listener serves alike: GET /metrics (the
 * given registry in Prometheus text format) and GET /healthz ("ok" while the process
 * runs). Before start. Returns 0, or -1. */
struct ferry_metrics;
int ferry_http_route_standard(ferry_http *h, struct ferry_metrics *reg);

#endif
