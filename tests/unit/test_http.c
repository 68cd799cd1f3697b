/* ferry_http: routing, bearer auth, body limits, JSON parsing and replies, over real
 * loopback connections (libcurl as the client; the server binds 127.0.0.1:0). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ferry_http.h"
#include "ferry_test.h"

#define TOKEN "s3cret-token-0123456789"

typedef struct resp {
    long status;
    char body[8192];
    size_t len;
    char allow[128];
    char www_auth[128];
} resp;

static size_t on_body(char *d, size_t sz, size_t n, void *u)
{
    resp *r = u;
    size_t k = sz * n;
    if (r->len + k >= sizeof(r->body))
        k = sizeof(r->body) - 1 - r->len;
    memcpy(r->body + r->len, d, k);
    r->len += k;
    r->body[r->len] = '\0';
    return sz * n;
}

static size_t on_header(char *d, size_t sz, size_t n, void *u)
{
    resp *r = u;
    size_t k = sz * n;
    if (k > 7 && strncasecmp(d, "Allow: ", 7) == 0)
        snprintf(r->allow, sizeof(r->allow), "%.*s", (int)(k - 9), d + 7);
    if (k > 18 && strncasecmp(d, "WWW-Authenticate: ", 18) == 0)
        snprintf(r->www_auth, sizeof(r->www_auth), "%.*s", (int)(k - 20), d + 18);
    return k;
}

/* One request. body NULL = GET (unless method given). chunked: no Content-Length. */
static resp request(unsigned port, const char *method, const char *path, const char *token,
                    const char *ctype, const char *body, size_t body_len, int chunked)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char url[256], auth[256], ct[128];
    resp r;

    memset(&r, 0, sizeof(r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", port, path);
    curl_easy_setopt(c, CURLOPT_URL, url);
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h = curl_slist_append(h, auth);
    }
    if (ctype) {
        snprintf(ct, sizeof(ct), "Content-Type: %s", ctype);
        h = curl_slist_append(h, ct);
    }
    if (chunked)
        h = curl_slist_append(h, "Transfer-Encoding: chunked");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (body) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
        if (!chunked)
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)body_len);
    }
    if (method)
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}

/* ---- handlers ---- */

static void h_health(ferry_http_req *req, void *opaque)
{
    int *calls = opaque;
    __atomic_add_fetch(calls, 1, __ATOMIC_SEQ_CST);
    ferry_http_reply(req, 200, "text/plain", "ok\n", 3);
}

static void h_echo_json(ferry_http_req *req, void *opaque)
{
    json_t *v = ferry_http_req_json(req, 4);
    if (!v)
        return;
    ferry_http_reply_json(req, 201, json_pack("{s:o}", "got", v));
}

static void h_item(ferry_http_req *req, void *opaque)
{
    const char *q = ferry_http_req_query(req, "q");
    ferry_http_add_header(req, "X-Item", ferry_http_req_path_rest(req));
    ferry_http_reply_json(req, 200,
                          json_pack("{s:s,s:s,s:s?}", "method", ferry_http_req_method(req),
                                    "rest", ferry_http_req_path_rest(req), "q", q));
}

static void h_silent(ferry_http_req *req, void *opaque) { (void)req; }

static void h_body_len(ferry_http_req *req, void *opaque)
{
    size_t n;
    ferry_http_req_body(req, &n);
    ferry_http_reply_error(req, 200, "len", "%zu", n);
}

static ferry_http *server(int with_token, int *calls)
{
    char errstr[256];
    ferry_http_conf hc;
    ferry_http *h;

    ferry_http_conf_init(&hc);
    hc.listen = "127.0.0.1:0";
    hc.max_body_bytes = 1024;
    h = ferry_http_new(&hc, errstr, sizeof(errstr));
    CHECK(h != NULL);
    if (!h)
        return NULL;
    if (with_token)
        CHECK(ferry_http_set_bearer_token(h, TOKEN, strlen(TOKEN)) == 0);
    CHECK(ferry_http_route(h, "GET", "/healthz", 0, h_health, calls) == 0);
    CHECK(ferry_http_route(h, "POST", "/v1/echo", FERRY_HTTP_AUTH, h_echo_json, NULL) == 0);
    CHECK(ferry_http_route(h, "GET", "/v1/items/", FERRY_HTTP_PREFIX | FERRY_HTTP_AUTH, h_item,
                           NULL) == 0);
    CHECK(ferry_http_route(h, "PUT", "/v1/items/", FERRY_HTTP_PREFIX | FERRY_HTTP_AUTH, h_item,
                           NULL) == 0);
    CHECK(ferry_http_route(h, "GET", "/silent", 0, h_silent, NULL) == 0);
    CHECK(ferry_http_route(h, "POST", "/len", 0, h_body_len, NULL) == 0);
    CHECK(ferry_http_start(h, errstr, sizeof(errstr)) == 0);
    CHECK(ferry_http_port(h) > 0);
    return h;
}

static void test_listen_parsing(void)
{
    static const char *bad[] = {"",           "127.0.0.1",
                                "127.0.0.1:", "127.0.0.1:99999",
                                ":80",        "localhost:80",
                                "::1:80",     "[::1]80",
                                "1.2.3.4:x",  NULL};
    char errstr[256];
    ferry_http_conf hc;

    ferry_http_conf_init(&hc);
    for (int i = 0; bad[i]; i++) {
        hc.listen = bad[i];
        ferry_http *h = ferry_http_new(&hc, errstr, sizeof(errstr));
        CHECK(h == NULL);
        ferry_http_destroy(h);
    }
    hc.listen = "[::1]:0";
    ferry_http *h = ferry_http_new(&hc, errstr, sizeof(errstr));
    CHECK(h != NULL);
    ferry_http_destroy(h);
    hc.listen = "0.0.0.0:8080";
    h = ferry_http_new(&hc, errstr, sizeof(errstr));
    CHECK(h != NULL);
    CHECK(ferry_http_route(h, "GET", "no-slash", 0, h_silent, NULL) == -1);
    ferry_http_destroy(h);
}

static void test_routing(void)
{
    int calls = 0;
    ferry_http *h = server(1, &calls);
    unsigned port = h ? ferry_http_port(h) : 0;
    resp r;

    r = request(port, NULL, "/healthz", NULL, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 200);
    CHECK_STR(r.body, "ok\n");
    CHECK_INT(calls, 1);
    r = request(port, NULL, "/nope", NULL, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 404);
    CHECK(strstr(r.body, "\"error\":\"not_found\"") != NULL);
    r = request(port, "DELETE", "/v1/items/x", TOKEN, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 405);
    CHECK_STR(r.allow, "GET, PUT");
    r = request(port, NULL, "/v1/items/sales.orders?q=1", TOKEN, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"rest\":\"sales.orders\"") != NULL);
    CHECK(strstr(r.body, "\"q\":\"1\"") != NULL);
    r = request(port, NULL, "/silent", NULL, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 500); /* a handler that forgets to reply */
    ferry_http_destroy(h);
}

static void test_auth(void)
{
    int calls = 0;
    ferry_http *h = server(1, &calls);
    unsigned port = h ? ferry_http_port(h) : 0;
    resp r;

    r = request(port, NULL, "/v1/items/a", NULL, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 401);
    CHECK_STR(r.www_auth, "Bearer");
    r = request(port, NULL, "/v1/items/a", "wrong", NULL, NULL, 0, 0);
    CHECK_INT(r.status, 401);
    r = request(port, NULL, "/v1/items/a", TOKEN "x", NULL, NULL, 0, 0);
    CHECK_INT(r.status, 401);
    r = request(port, NULL, "/v1/items/a", "s3cret-token-012345678", NULL, NULL, 0, 0);
    CHECK_INT(r.status, 401); /* a prefix of the token */
    r = request(port, NULL, "/v1/items/a", TOKEN, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 200);
    /* 401 comes before the body is read, even when it is too large */
    char big[4096];
    memset(big, 'a', sizeof(big));
    r = request(port, NULL, "/v1/echo", NULL, "application/json", big, sizeof(big), 0);
    CHECK_INT(r.status, 401);
    /* unauthenticated routes stay open */
    r = request(port, NULL, "/healthz", NULL, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 200);
    ferry_http_destroy(h);

    /* No token configured: FERRY_HTTP_AUTH routes are open. */
    h = server(0, &calls);
    port = h ? ferry_http_port(h) : 0;
    r = request(port, NULL, "/v1/items/a", NULL, NULL, NULL, 0, 0);
    CHECK_INT(r.status, 200);
    ferry_http_destroy(h);
}

static void test_bodies(void)
{
    ferry_http *h = server(1, NULL);
    unsigned port = h ? ferry_http_port(h) : 0;
    char big[2048], exact[1024];
    resp r;

    memset(big, 'a', sizeof(big));
    memset(exact, 'b', sizeof(exact));
    r = request(port, NULL, "/len", NULL, "text/plain", exact, sizeof(exact), 0);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"message\":\"1024\"") != NULL);
    r = request(port, NULL, "/len", NULL, "text/plain", big, sizeof(big), 0);
    CHECK_INT(r.status, 413);
    big[sizeof(big) - 1] = '\0';
    r = request(port, NULL, "/len", NULL, "text/plain", big, sizeof(big) - 1, 1);
    CHECK_INT(r.status, 413); /* chunked: no Content-Length to check up front */
    exact[100] = '\0';        /* chunked: curl sends strlen(body) */
    r = request(port, NULL, "/len", NULL, "text/plain", exact, 100, 1);
    CHECK_INT(r.status, 200);
    CHECK(strstr(r.body, "\"message\":\"100\"") != NULL);
    ferry_http_destroy(h);
}

static void test_json(void)
{
    ferry_http *h = server(1, NULL);
    unsigned port = h ? ferry_http_port(h) : 0;
    resp r;
    const char *ok = "{\"a\":[1,{\"b\":\"x\"}]}";
    const char *deep = "{\"a\":[[[[1]]]]}";

    r = request(port, NULL, "/v1/echo", TOKEN, "application/json", ok, strlen(ok), 0);
    CHECK_INT(r.status, 201);
    CHECK(strstr(r.body, "\"got\":{\"a\":[1,{\"b\":\"x\"}]}") != NULL);
    r = request(port, NULL, "/v1/echo", TOKEN, "application/json; charset=utf-8", ok,
                strlen(ok), 0);
    CHECK_INT(r.status, 201);
    r = request(port, NULL, "/v1/echo", TOKEN, "text/plain", ok, strlen(ok), 0);
    CHECK_INT(r.status, 415);
    r = request(port, NULL, "/v1/echo", TOKEN, "application/json", deep, strlen(deep), 0);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body, "deeper than 4") != NULL);
    r = request(port, NULL, "/v1/echo", TOKEN, "application/json", "{\"a\":", 5, 0);
    CHECK_INT(r.status, 400);
    CHECK(strstr(r.body, "invalid_json") != NULL);
    r = request(port, NULL, "/v1/echo", TOKEN, "application/json", "{\"a\":1,\"a\":2}", 13, 0);
    CHECK_INT(r.status, 400); /* duplicate keys */
    r = request(port, NULL, "/v1/echo", TOKEN, "application/json", "\"\\u0000\"", 8, 0);
    CHECK_INT(r.status, 400);
    r = request(port, NULL, "/v1/echo", TOKEN, "application/json", "", 0, 0);
    CHECK_INT(r.status, 400);
    ferry_http_destroy(h);
}

static void test_json_depth(void)
{
    CHECK_INT(ferry_http_json_depth("", 0, 5), 0);
    CHECK_INT(ferry_http_json_depth("1", 1, 5), 0);
    CHECK_INT(ferry_http_json_depth("{}", 2, 5), 1);
    CHECK_INT(ferry_http_json_depth("[[],[[]]]", 9, 5), 3);
    CHECK_INT(ferry_http_json_depth("{\"[[[[\":1}", 10, 5), 1);   /* in a string */
    CHECK_INT(ferry_http_json_depth("[\"\\\"[[[[\"]", 11, 5), 1); /* escaped quote */
    CHECK_INT(ferry_http_json_depth("[[[[[[[[[[", 10, 3), 4);     /* stops at limit+1 */
    CHECK_INT(ferry_http_json_depth("]]]][", 5, 3), 1);           /* never negative */
}

typedef struct flood_arg {
    unsigned port;
    int ok;
} flood_arg;

static void *flood(void *p)
{
    flood_arg *a = p;
    for (int i = 0; i < 50; i++)
        a->ok += request(a->port, NULL, "/healthz", NULL, NULL, NULL, 0, 0).status == 200;
    return NULL;
}

static void test_concurrency(void)
{
    int calls = 0;
    ferry_http *h = server(0, &calls);
    pthread_t th[8];
    flood_arg args[8];
    int ok = 0;

    for (int i = 0; i < 8; i++) {
        args[i].port = h ? ferry_http_port(h) : 0;
        args[i].ok = 0;
        pthread_create(&th[i], NULL, flood, &args[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        ok += args[i].ok;
    }
    CHECK_INT(ok, 400);
    CHECK_INT(calls, 400);
    ferry_http_destroy(h);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    RUN(test_listen_parsing);
    RUN(test_routing);
    RUN(test_auth);
    RUN(test_bodies);
    RUN(test_json);
    RUN(test_json_depth);
    RUN(test_concurrency);
    curl_global_cleanup();
    return TEST_EXIT();
}
