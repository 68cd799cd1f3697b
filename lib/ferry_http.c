#include "ferry_http.h"
#include "ferry_metrics.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <openssl/sha.h>

#include "ferry_log.h"
#include "ferry_util.h"

#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_MAX_CONNECTIONS 64
#define DEFAULT_TIMEOUT_S 30

typedef struct route {
    char *method;
    char *path;
    size_t path_len;
    unsigned flags;
    ferry_http_handler fn;
    void *opaque;
} route;

struct ferry_http {
    ferry_http_conf conf;
    char *listen;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    route *routes;
    size_t n_routes;
    unsigned char token_sha[SHA256_DIGEST_LENGTH];
    int has_token;
    struct MHD_Daemon *mhd;
    unsigned port;
    ferry_http_reply_hook on_reply;
    void *on_reply_opaque;
};

typedef struct header {
    char *name, *value;
} header;

/* One request; lives from the first access-handler call to the completion callback. */
struct ferry_http_req {
    ferry_http *h;
    struct MHD_Connection *conn;
    const route *rt;
    const char *method, *path;
    char *body;
    size_t body_len;
    int too_large;
    /* the reply */
    int replied;
    int status;
    char *content_type;
    char *resp;
    size_t resp_len;
    header *headers;
    size_t n_headers;
};

void ferry_http_conf_init(ferry_http_conf *conf)
{
    memset(conf, 0, sizeof(*conf));
    conf->max_body_bytes = DEFAULT_MAX_BODY;
    conf->max_connections = DEFAULT_MAX_CONNECTIONS;
    conf->timeout_s = DEFAULT_TIMEOUT_S;
}

/* "ADDR:PORT" or "[V6]:PORT" into a sockaddr; numeric only. */
static int parse_listen(ferry_http *h, const char *s, char *errstr, size_t errstr_size)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *colon, *port_s, *hs;
    size_t hl;
    char *end;
    long port;
    struct addrinfo hints, *res = NULL;
    int rc;

    if (!s || !*s)
        goto bad;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            goto bad;
        hs = s + 1;
        hl = (size_t)(close - hs);
        port_s = close + 2;
    } else {
        colon = strrchr(s, ':');
        if (!colon || memchr(s, ':', (size_t)(colon - s)))
            goto bad; /* no port, or an unbracketed IPv6 literal */
        hs = s;
        hl = (size_t)(colon - s);
        port_s = colon + 1;
    }
    if (hl == 0 || hl >= sizeof(host))
        goto bad;
    memcpy(host, hs, hl);
    host[hl] = '\0';
    port = strtol(port_s, &end, 10);
    if (!*port_s || *end || port < 0 || port > 65535)
        goto bad;
    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICHOST | AI_PASSIVE;
    hints.ai_socktype = SOCK_STREAM;
    if ((rc = getaddrinfo(host, NULL, &hints, &res)) != 0 || !res) {
        snprintf(errstr, errstr_size, "listen address \"%s\": %s (a numeric address is needed)",
                 s, rc ? gai_strerror(rc) : "no address");
        if (res)
            freeaddrinfo(res);
        return -1;
    }
    memcpy(&h->addr, res->ai_addr, res->ai_addrlen);
    h->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    if (h->addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&h->addr)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)&h->addr)->sin_port = htons((uint16_t)port);
    return 0;
bad:
    snprintf(errstr, errstr_size, "listen address \"%s\" is not ADDR:PORT or [ADDR]:PORT",
             s ? s : "");
    return -1;
}

ferry_http *ferry_http_new(const ferry_http_conf *conf, char *errstr, size_t errstr_size)
{
    ferry_http *h = calloc(1, sizeof(*h));

    if (!h) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    h->conf = *conf;
    if (!h->conf.max_body_bytes)
        h->conf.max_body_bytes = DEFAULT_MAX_BODY;
    if (!h->conf.max_connections)
        h->conf.max_connections = DEFAULT_MAX_CONNECTIONS;
    if (!h->conf.timeout_s)
        h->conf.timeout_s = DEFAULT_TIMEOUT_S;
    if (parse_listen(h, conf->listen, errstr, errstr_size) != 0)
        goto fail;
    if (!(h->listen = strdup(conf->listen))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    h->conf.listen = h->listen;
    return h;
fail:
    ferry_http_destroy(h);
    return NULL;
}

void ferry_http_destroy(ferry_http *h)
{
    if (!h)
        return;
    if (h->mhd)
        MHD_stop_daemon(h->mhd); /* joins the connection threads */
    for (size_t i = 0; i < h->n_routes; i++) {
        free(h->routes[i].method);
        free(h->routes[i].path);
    }
    free(h->routes);
    free(h->listen);
    explicit_bzero(h->token_sha, sizeof(h->token_sha));
    free(h);
}

int ferry_http_set_bearer_token(ferry_http *h, const char *token, size_t len)
{
    if (!token || !len || h->mhd)
        return -1;
    SHA256((const unsigned char *)token, len, h->token_sha);
    h->has_token = 1;
    return 0;
}

int ferry_http_on_reply(ferry_http *h, ferry_http_reply_hook fn, void *opaque)
{
    if (h->mhd)
        return -1;
    h->on_reply = fn;
    h->on_reply_opaque = opaque;
    return 0;
}

int ferry_http_route(ferry_http *h, const char *method, const char *path, unsigned flags,
                     ferry_http_handler fn, void *opaque)
{
    route *n;

    if (!method || !*method || !path || path[0] != '/' || !fn || h->mhd)
        return -1;
    n = realloc(h->routes, (h->n_routes + 1) * sizeof(*n));
    if (!n)
        return -1;
    h->routes = n;
    n = &h->routes[h->n_routes];
    n->method = strdup(method);
    n->path = strdup(path);
    if (!n->method || !n->path) {
        free(n->method);
        free(n->path);
        return -1;
    }
    n->path_len = strlen(path);
    n->flags = flags;
    n->fn = fn;
    n->opaque = opaque;
    h->n_routes++;
    return 0;
}

/* ---- replies ---------------------------------------------------------------------- */

void ferry_http_reply(ferry_http_req *req, int status, const char *content_type,
                      const void *body, size_t len)
{
    if (req->replied) {
        ferry_warn(NULL, "http: handler for %s %s replied twice; second reply dropped",
                   req->method, req->path);
        return;
    }
    req->replied = 1;
    req->status = status;
    req->content_type = strdup(content_type ? content_type : "application/json");
    req->resp = malloc(len ? len : 1);
    if (req->resp && len)
        memcpy(req->resp, body, len);
    req->resp_len = req->resp ? len : 0;
}

void ferry_http_reply_json(ferry_http_req *req, int status, json_t *obj)
{
    char *text = obj ? json_dumps(obj, JSON_COMPACT) : NULL;

    json_decref(obj);
    if (!text) {
        ferry_http_reply(req, 500, NULL,
                         "{\"error\":\"internal\",\"message\":\"out of memory\"}", 47);
        return;
    }
    /* A trailing newline keeps `curl` output readable. */
    size_t n = strlen(text);
    char *nl = realloc(text, n + 2);
    if (nl) {
        text = nl;
        text[n++] = '\n';
        text[n] = '\0';
    }
    ferry_http_reply(req, status, NULL, text, n);
    free(text);
}

void ferry_http_reply_error(ferry_http_req *req, int status, const char *code, const char *fmt,
                            ...)
{
    char msg[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    ferry_http_reply_json(req, status, json_pack("{s:s,s:s}", "error", code, "message", msg));
}

int ferry_http_add_header(ferry_http_req *req, const char *name, const char *value)
{
    header *n = realloc(req->headers, (req->n_headers + 1) * sizeof(*n));
    if (!n)
        return -1;
    req->headers = n;
    n[req->n_headers].name = strdup(name);
    n[req->n_headers].value = strdup(value);
    if (!n[req->n_headers].name || !n[req->n_headers].value) {
        free(n[req->n_headers].name);
        free(n[req->n_headers].value);
        return -1;
    }
    req->n_headers++;
    return 0;
}

static enum MHD_Result send_reply(ferry_http_req *req)
{
    struct MHD_Response *resp;
    enum MHD_Result r;

    if (!req->replied) {
        ferry_err(NULL, "http: handler for %s %s did not reply", req->method, req->path);
        ferry_http_reply_error(req, 500, "internal", "the handler did not reply");
    }
    if (req->h->on_reply)
        req->h->on_reply(req, req->status, req->h->on_reply_opaque);
    resp = MHD_create_response_from_buffer(req->resp_len, req->resp ? req->resp : (void *)"",
                                           MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            req->content_type ? req->content_type : "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    for (size_t i = 0; i < req->n_headers; i++)
        MHD_add_response_header(resp, req->headers[i].name, req->headers[i].value);
    r = MHD_queue_response(req->conn, (unsigned)req->status, resp);
    MHD_destroy_response(resp);
    return r;
}

/* ---- request accessors ----------------------------------------------------------- */

const char *ferry_http_req_method(const ferry_http_req *req) { return req->method; }
const char *ferry_http_req_path(const ferry_http_req *req) { return req->path; }

const char *ferry_http_req_path_rest(const ferry_http_req *req)
{
    return (req->rt->flags & FERRY_HTTP_PREFIX) ? req->path + req->rt->path_len : "";
}

const char *ferry_http_req_header(const ferry_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
}

const char *ferry_http_req_query(const ferry_http_req *req, const char *name)
{
    return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *ferry_http_req_body(const ferry_http_req *req, size_t *len)
{
    *len = req->body_len;
    return req->body ? req->body : "";
}

int ferry_http_json_depth(const char *text, size_t len, int limit)
{
    int depth = 0, max = 0, in_str = 0;

    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            if (++depth > max) {
                max = depth;
                if (max > limit)
                    return limit + 1;
            }
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    return max;
}

json_t *ferry_http_req_json(ferry_http_req *req, int max_depth)
{
    const char *ct = ferry_http_req_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);
    json_error_t jerr;
    json_t *v;

    if (ct) {
        size_t n = strcspn(ct, ";");
        while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
            n--;
        if (n != 16 || strncasecmp(ct, "application/json", 16) != 0) {
            ferry_http_reply_error(req, 415, "unsupported_media_type",
                                   "Content-Type must be application/json");
            return NULL;
        }
    }
    if (req->body_len == 0) {
        ferry_http_reply_error(req, 400, "invalid_json", "the request has no body");
        return NULL;
    }
    if (ferry_http_json_depth(req->body, req->body_len, max_depth) > max_depth) {
        ferry_http_reply_error(req, 400, "invalid_json", "JSON nested deeper than %d levels",
                               max_depth);
        return NULL;
    }
    v = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!v) {
        ferry_http_reply_error(req, 400, "invalid_json", "line %d column %d: %s", jerr.line,
                               jerr.column, jerr.text);
        return NULL;
    }
    return v;
}

/* ---- the libmicrohttpd callbacks ------------------------------------------------- */

static int authorized(const ferry_http *h, struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    unsigned char sha[SHA256_DIGEST_LENGTH];
    size_t n;

    if (!h->has_token)
        return 1;
    if (!v || strncasecmp(v, "Bearer ", 7) != 0)
        return 0;
    v += 7;
    while (*v == ' ')
        v++;
    n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    if (!n)
        return 0;
    /* Hashing first makes the comparison constant-time whatever the lengths. */
    SHA256((const unsigned char *)v, n, sha);
    return ferry_ct_memcmp(sha, h->token_sha, sizeof(sha)) == 0;
}

/* Finds the route; *path_only is set when a route matches the path but not the method. */
static const route *find_route(const ferry_http *h, const char *method, const char *path,
                               int *path_only, char *allow, size_t allow_size)
{
    size_t used = 0;

    *path_only = 0;
    allow[0] = '\0';
    for (size_t i = 0; i < h->n_routes; i++) {
        const route *r = &h->routes[i];
        int match = (r->flags & FERRY_HTTP_PREFIX) ? strncmp(path, r->path, r->path_len) == 0
                                                   : strcmp(path, r->path) == 0;
        if (!match)
            continue;
        if (strcmp(method, r->method) == 0)
            return r;
        *path_only = 1;
        if (used < allow_size)
            used += (size_t)snprintf(allow + used, allow_size - used, "%s%s", used ? ", " : "",
                                     r->method);
    }
    return NULL;
}

static void req_free(ferry_http_req *req)
{
    if (!req)
        return;
    free(req->body);
    free(req->content_type);
    free(req->resp);
    for (size_t i = 0; i < req->n_headers; i++) {
        free(req->headers[i].name);
        free(req->headers[i].value);
    }
    free(req->headers);
    free(req);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    ferry_http *h = cls;
    ferry_http_req *req = *con_cls;

    if (!req) {
        const char *cl;
        char allow[128];
        int path_only;

        if (!(req = calloc(1, sizeof(*req))))
            return MHD_NO;
        *con_cls = req;
        req->h = h;
        req->conn = conn;
        req->method = method;
        req->path = url;
        req->rt = find_route(h, method, url, &path_only, allow, sizeof(allow));
        if (!req->rt) {
            if (path_only) {
                ferry_http_add_header(req, MHD_HTTP_HEADER_ALLOW, allow);
                ferry_http_reply_error(req, 405, "method_not_allowed",
                                       "%s is not allowed here (allowed: %s)", method, allow);
            } else {
                ferry_http_reply_error(req, 404, "not_found", "no such resource");
            }
            return send_reply(req);
        }
        if ((req->rt->flags & FERRY_HTTP_AUTH) && !authorized(h, conn)) {
            ferry_http_add_header(req, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
            ferry_http_reply_error(
                req, 401, "unauthorized",
                "a valid \"Authorization: Bearer <token>\" header is required");
            return send_reply(req);
        }
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl) {
            char *end;
            unsigned long long n = strtoull(cl, &end, 10);
            if (*end == '\0' && n > h->conf.max_body_bytes) {
                ferry_http_reply_error(req, 413, "body_too_large",
                                       "the body is larger than %zu bytes",
                                       h->conf.max_body_bytes);
                return send_reply(req);
            }
        }
        return MHD_YES; /* wait for the body (MHD sends "100 Continue" if asked) */
    }

    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0; /* consumed (or drained) */
        if (req->replied)      /* refused in the first call; the body is not wanted */
            return MHD_YES;
        if (req->too_large || req->body_len + n > req->h->conf.max_body_bytes) {
            req->too_large = 1;
            free(req->body);
            req->body = NULL;
            req->body_len = 0;
            return MHD_YES;
        }
        char *nb = realloc(req->body, req->body_len + n + 1);
        if (!nb)
            return MHD_NO;
        memcpy(nb + req->body_len, upload_data, n);
        req->body = nb;
        req->body_len += n;
        req->body[req->body_len] = '\0';
        return MHD_YES;
    }

    if (req->replied) /* answered in the first call; MHD calls again with the body */
        return MHD_YES;
    if (req->too_large)
        ferry_http_reply_error(req, 413, "body_too_large", "the body is larger than %zu bytes",
                               req->h->conf.max_body_bytes);
    else
        req->rt->fn(req, req->rt->opaque);
    return send_reply(req);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    req_free(*con_cls);
    *con_cls = NULL;
}

/* MHD's own format strings. */
__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt,
                                                             va_list ap)
{
    char msg[512];
    size_t n;

    if (!ferry_log_enabled(FERRY_LOG_WARN))
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    ferry_warn(NULL, "http: %s", msg);
}

int ferry_http_start(ferry_http *h, char *errstr, size_t errstr_size)
{
    unsigned flags = MHD_USE_AUTO | MHD_USE_INTERNAL_POLLING_THREAD |
                     MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG;
    const union MHD_DaemonInfo *info;

    if (h->mhd)
        return 0;
    if (h->addr.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The logger goes first, or MHD prints what comes before it to stderr itself. */
    h->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER,
                              on_mhd_log, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&h->addr,
                              MHD_OPTION_CONNECTION_LIMIT, (unsigned)h->conf.max_connections,
                              MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)h->conf.timeout_s,
                              MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
                              MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(errstr, errstr_size, "cannot listen on %s (address in use or not local?)",
                 h->listen);
        return -1;
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    return 0;
}

unsigned ferry_http_port(const ferry_http *h) { return h->mhd ? h->port : 0; }

/* ---- standard routes -------------------------------------------------------------- */

static void standard_metrics(ferry_http_req *req, void *opaque)
{
    size_t len = 0;
    char *text = ferry_metrics_render(opaque, &len);
    if (!text) {
        ferry_http_reply_error(req, 500, "internal", "out of memory");
        return;
    }
    ferry_http_reply(req, 200, FERRY_METRICS_CONTENT_TYPE, text, len);
    free(text);
}

static void standard_healthz(ferry_http_req *req, void *opaque)
{
    (void)opaque;
    ferry_http_reply(req, 200, "text/plain; charset=utf-8", "ok\n", 3);
}

int ferry_http_route_standard(ferry_http *h, struct ferry_metrics *reg)
{
    if (ferry_http_route(h, "GET", "/metrics", 0, standard_metrics, reg) != 0 ||
        ferry_http_route(h, "GET", "/healthz", 0, standard_healthz, NULL) != 0)
        return -1;
    return 0;
}
