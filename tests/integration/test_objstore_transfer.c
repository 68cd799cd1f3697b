/* Integration: TRANSFER (streamed GET -> PUT across endpoints and credentials) between the
 * two S3Proxy instances of the local stack (FERRY_STACK_S3_SECOND=1): source on #1
 * (FERRY_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY), target on #2
 * (FERRY_S3_ENDPOINT_2, FERRY_S3_ACCESS_KEY_ID_2, FERRY_S3_SECRET_ACCESS_KEY_2). A small
 * in-process HTTP server stands in for a source that fails in the middle of a part, so
 * the abort of the multipart upload is tested deterministically. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ferry_objstore.h"
#include "ferry_test.h"
#include "ferry_util.h"
#include "integ_env.h"

#define MiB ((size_t)1 << 20)

/* Allowed peak RSS growth while 64 MiB stream through 256 KiB buffers. Buffering the object
 * would cost 64 MiB, buffering four 8 MiB parts 32 MiB. Under ASan freed memory sits in
 * its quarantine (with redzones) instead of being reused, which adds ~15 MiB of churn. The
 * control GET at the end shows the probe does see a buffered object. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_BOUND_KB (20 * 1024L)
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_BOUND_KB (20 * 1024L)
#endif
#endif
#ifndef RSS_BOUND_KB
#define RSS_BOUND_KB (12 * 1024L) /* measured: 0 KiB; ~9 MiB under valgrind's allocator */
#endif

static const char *ep1, *key1, *sec1, *ep2, *key2, *sec2, *region2;
static char src_bucket[64], dst_bucket[64];
static ferry_objstore *src, *dst; /* dst: 5 MiB threshold and parts */

static ferry_objstore *store(const char *ep, const char *ak, const char *sk, const char *region,
                             uint64_t threshold, size_t tx_buffer, int max_in_flight)
{
    ferry_objstore_conf c;
    ferry_error err;
    ferry_objstore *os;

    ferry_objstore_conf_init(&c);
    c.endpoint = ep;
    c.region = region;
    c.access_key = ak;
    c.secret_key = sk;
    c.connect_timeout_ms = 3000;
    c.stall_timeout_ms = 30000;
    c.max_in_flight = max_in_flight;
    if (threshold) {
        c.multipart_threshold = threshold;
        c.multipart_part_size = 5 * MiB;
    }
    if (tx_buffer)
        c.transfer_buffer_bytes = tx_buffer;
    os = ferry_objstore_new(&c, &err);
    if (!os)
        fprintf(stderr, "ferry_objstore_new: %s\n", err.msg);
    return os;
}

/* Deterministic bytes: position-dependent, so a misplaced range shows. */
static unsigned char byte_at(uint64_t i, unsigned seed)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull + seed;
    return (unsigned char)(x >> 29);
}

static char *make_data(size_t n, unsigned seed)
{
    char *d = malloc(n ? n : 1);
    size_t i;

    for (i = 0; d && i < n; i++)
        d[i] = (char)byte_at(i, seed);
    return d;
}

static int uploads_in(ferry_objstore *os, const char *bucket, const char *prefix)
{
    ferry_objstore_listing l;
    ferry_objstore_op op;
    int n;

    ferry_objstore_listing_init(&l);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_LIST_UPLOADS);
    op.bucket = bucket;
    op.prefix = prefix;
    op.listing = &l;
    if (ferry_objstore_exec(os, &op) != FERRY_OK) {
        fprintf(stderr, "  list uploads: %s\n", op.err.msg);
        ferry_objstore_listing_free(&l);
        return -1;
    }
    n = (int)l.count;
    for (size_t i = 0; i < l.count; i++)
        fprintf(stderr, "  in-progress upload: %s (%s)\n", l.entries[i].key,
                l.entries[i].upload_id);
    ferry_objstore_listing_free(&l);
    return n;
}

static int missing_at(ferry_objstore *os, const char *bucket, const char *key)
{
    ferry_objstore_info info;
    ferry_error err;

    return ferry_objstore_head(os, bucket, key, &info, &err) == FERRY_ERR_PERMANENT &&
           !strcmp(err.cls, FERRY_EC_S3_NOT_FOUND);
}

/* ---------------------------------------------------------------- small objects */

static const char *const keys[] = {
    "plain.txt",
    "with space.txt",
    "unicode/\xC3\xA9\xE6\xBC\xA2\xE5\xAD\x97\xF0\x9F\x98\x80.bin",
    "plus+sign+",
    "percent%20literal%",
    "eq=amp&semi;",
    "tilde~star*paren(1)!$",
    "nested/a/b/c/d.txt",
    "question?mark#hash",
    "quote\"apos'",
    "[brackets]{braces}^|`<>",
    "empty-object",
    "size-unknown.bin",
};
#define N_KEYS (sizeof(keys) / sizeof(keys[0]))

static size_t size_for(size_t i)
{
    return !strcmp(keys[i], "empty-object") ? 0 : 100 + i * 3001;
}

typedef struct stats {
    size_t done, ok;
} stats;

static void on_done(ferry_objstore_op *op, void *opaque)
{
    stats *st = opaque;
    st->done++;
    if (op->rc == FERRY_OK)
        st->ok++;
    else
        fprintf(stderr, "  op failed: %s\n", op->err.msg);
}

static void transfer_small_objects_across_endpoints(void)
{
    static ferry_objstore_op ops[N_KEYS];
    char etags[N_KEYS][FERRY_OBJSTORE_ETAG_MAX];
    stats st = {0, 0};
    ferry_objstore_batch_opts bo = {0, NULL, on_done, &st};
    ferry_error err;
    size_t i;
    int64_t t0;

    for (i = 0; i < N_KEYS; i++) {
        size_t n = size_for(i);
        char *d = make_data(n, (unsigned)i);
        CHECK_INT(ferry_objstore_put(src, src_bucket, keys[i], d, n, "application/x-ferry",
                                     etags[i], &err),
                  FERRY_OK);
        free(d);
    }
    for (i = 0; i < N_KEYS; i++) {
        ferry_objstore_op_init(&ops[i], FERRY_OBJSTORE_OP_TRANSFER);
        ops[i].src_store = src;
        ops[i].src_bucket = src_bucket;
        ops[i].src_key = keys[i];
        /* as the worker does: size and ETag from the listing; one left to a HEAD */
        if (strcmp(keys[i], "size-unknown.bin") != 0) {
            ops[i].src_size = size_for(i);
            ops[i].src_if_match = etags[i];
        }
        ops[i].bucket = dst_bucket;
        ops[i].key = keys[i];
    }
    t0 = ferry_mono_ms();
    CHECK_INT(ferry_objstore_run_batch(dst, ops, N_KEYS, &bo), FERRY_OK); /* 4 streams */
    fprintf(stderr, "  %zu transfers in %lld ms\n", N_KEYS, (long long)(ferry_mono_ms() - t0));
    CHECK_INT(st.ok, N_KEYS);
    for (i = 0; i < N_KEYS; i++) {
        size_t n = size_for(i), len = 0;
        char *d = make_data(n, (unsigned)i), *back = NULL;
        if (ops[i].rc != FERRY_OK) {
            free(d);
            continue;
        }
        CHECK_INT(ops[i].size, n);
        CHECK(!ops[i].multipart);
        CHECK_STR(ops[i].etag, etags[i]); /* single-part: both MD5 of the same bytes */
        CHECK_INT(ferry_objstore_get(dst, dst_bucket, keys[i], 1 << 20, &back, &len, &err),
                  FERRY_OK);
        CHECK(len == n && back && memcmp(back, d, n) == 0);
        free(back);
        free(d);
    }
    /* the blocking helper, and a TRANSFER whose source store is the target store itself */
    {
        ferry_objstore_info info;
        CHECK_INT(ferry_objstore_transfer(dst, dst, dst_bucket, keys[0], dst_bucket,
                                          "self/plain.txt", &info, &err),
                  FERRY_OK);
        CHECK_INT(info.size, size_for(0));
        CHECK_STR(info.etag, etags[0]);
    }
}

/* ---------------------------------------------------------------- multipart */

static void transfer_multipart_20mib(void)
{
    const size_t size = 20 * MiB;
    char *d = make_data(size, 77), *back = NULL, etag[FERRY_OBJSTORE_ETAG_MAX];
    ferry_objstore_op op;
    ferry_error err;
    size_t len = 0;
    int64_t t0;

    CHECK_INT(ferry_objstore_put(src, src_bucket, "big/twenty mib.bin", d, size,
                                 "video/x-ferry", etag, &err),
              FERRY_OK);
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_store = src;
    op.src_bucket = src_bucket;
    op.src_key = "big/twenty mib.bin";
    op.src_size = size;
    op.src_if_match = etag;
    op.bucket = dst_bucket;
    op.key = "big/twenty mib.bin";
    t0 = ferry_mono_ms();
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_OK);
    if (op.rc != FERRY_OK)
        fprintf(stderr, "  multipart transfer: %s\n", op.err.msg);
    fprintf(stderr, "  20 MiB in 4 parts: %lld ms, ETag %s\n",
            (long long)(ferry_mono_ms() - t0), op.etag);
    CHECK(op.multipart);
    CHECK_INT(op.size, size);
    CHECK(strstr(op.etag, "-4") != NULL);
    CHECK_INT(ferry_objstore_get(dst, dst_bucket, "big/twenty mib.bin", size, &back, &len,
                                 &err),
              FERRY_OK);
    CHECK(len == size && back && memcmp(back, d, size) == 0);
    free(back);
    CHECK_INT(uploads_in(dst, dst_bucket, NULL), 0);

    /* size unknown: a HEAD finds it is large, then the same multipart path */
    op.src_size = FERRY_OBJSTORE_SIZE_UNKNOWN;
    op.src_if_match = NULL;
    op.key = "big/size unknown.bin";
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_OK);
    CHECK(op.multipart);
    CHECK_INT(op.size, size);
    free(d);
}

/* Streams take two slots at once; with an odd, small number of slots and single-slot
 * requests (HEADs) competing, nothing may starve or deadlock. */
static void transfer_mixed_batch_on_three_slots(void)
{
    enum { N = 24 };
    static ferry_objstore_op ops[N];
    static char dkeys[N][64];
    ferry_objstore *d = store(ep2, key2, sec2, region2, 5 * MiB, 64 << 10, 3);
    stats st = {0, 0};
    ferry_objstore_batch_opts bo = {0, NULL, on_done, &st};
    size_t i;
    int64_t t0;

    CHECK(d != NULL);
    if (!d)
        return;
    for (i = 0; i < N; i++) {
        size_t k = i % N_KEYS;
        snprintf(dkeys[i], sizeof(dkeys[i]), "mixed/%02zu", i);
        if (i % 4 == 3) {
            ferry_objstore_op_init(&ops[i], FERRY_OBJSTORE_OP_HEAD);
            ops[i].bucket = dst_bucket;
            ops[i].key = keys[k]; /* copied by the first test */
            continue;
        }
        ferry_objstore_op_init(&ops[i], FERRY_OBJSTORE_OP_TRANSFER);
        ops[i].src_store = src;
        ops[i].src_bucket = src_bucket;
        ops[i].bucket = dst_bucket;
        ops[i].key = dkeys[i];
        if (i % 8 == 5) {
            ops[i].src_key = "big/twenty mib.bin";
            ops[i].src_size = 20 * MiB;
        } else {
            ops[i].src_key = keys[k];
            ops[i].src_size = size_for(k);
        }
    }
    t0 = ferry_mono_ms();
    CHECK_INT(ferry_objstore_run_batch(d, ops, N, &bo), FERRY_OK);
    fprintf(stderr, "  %d mixed ops (3 multipart) on 3 slots: %lld ms\n", N,
            (long long)(ferry_mono_ms() - t0));
    CHECK_INT(st.ok, N);
    for (i = 0; i < N; i++)
        if (ops[i].type == FERRY_OBJSTORE_OP_TRANSFER && ops[i].rc == FERRY_OK)
            CHECK_INT(ops[i].size, ops[i].src_size);
    /* also through submit/pump with everything queued at once */
    memset(&st, 0, sizeof(st));
    for (i = 0; i < N; i++) {
        ops[i].done = on_done;
        ops[i].done_opaque = &st;
        ferry_objstore_submit(d, &ops[i]);
    }
    while (ferry_objstore_pump(d, 1000) > 0)
        ;
    CHECK_INT(st.ok, N);
    CHECK_INT(uploads_in(d, dst_bucket, "mixed/"), 0);
    ferry_objstore_destroy(d);
}

/* ---------------------------------------------------------------- failures */

static void transfer_missing_source_creates_nothing(void)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_store = src;
    op.src_bucket = src_bucket;
    op.src_key = "no/such key";
    op.src_size = 10;
    op.bucket = dst_bucket;
    op.key = "missing/target";
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_ERR_PERMANENT);
    CHECK_STR(op.err.cls, FERRY_EC_S3_NOT_FOUND);
    CHECK_INT(op.http_status, 404);
    CHECK(strstr(op.err.msg, "GetObject") != NULL);
    fprintf(stderr, "  missing source: %s\n", op.err.msg);
    CHECK(missing_at(dst, dst_bucket, "missing/target"));
    /* large and missing: the HEAD fails, nothing is created */
    op.src_size = 50 * MiB;
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_ERR_PERMANENT);
    CHECK_INT(op.http_status, 404);
    CHECK_INT(uploads_in(dst, dst_bucket, "missing/"), 0);
}

static void transfer_stale_source_etag_is_412(void)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_store = src;
    op.src_bucket = src_bucket;
    op.src_key = keys[1];
    op.src_size = size_for(1);
    op.src_if_match = "0123456789abcdef0123456789abcdef";
    op.bucket = dst_bucket;
    op.key = "stale/one";
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_ERR_PERMANENT);
    CHECK_INT(op.http_status, 412);
    fprintf(stderr, "  stale source: %s\n", op.err.msg);
    CHECK(missing_at(dst, dst_bucket, "stale/one"));
    op.src_key = "big/twenty mib.bin";
    op.src_size = 20 * MiB;
    op.key = "stale/big";
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_ERR_PERMANENT);
    CHECK_INT(op.http_status, 412);
    CHECK_INT(uploads_in(dst, dst_bucket, "stale/"), 0);
}

static void transfer_wrong_target_credentials(void)
{
    ferry_objstore *bad = store(ep2, key2, "wrong-secret-for-target", region2, 5 * MiB, 0, 8);
    ferry_objstore_op op;

    CHECK(bad != NULL);
    if (!bad)
        return;
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_store = src;
    op.src_bucket = src_bucket;
    op.src_key = keys[2];
    op.src_size = size_for(2);
    op.bucket = dst_bucket;
    op.key = "badcreds/small";
    CHECK_INT(ferry_objstore_exec(bad, &op), FERRY_ERR_PERMANENT);
    CHECK_STR(op.err.cls, FERRY_EC_S3_AUTH);
    CHECK(strstr(op.err.msg, "PutObject") != NULL);
    CHECK(strstr(op.err.msg, "wrong-secret") == NULL);
    fprintf(stderr, "  wrong target secret: %s\n", op.err.msg);
    op.src_key = "big/twenty mib.bin";
    op.src_size = 20 * MiB;
    op.key = "badcreds/big";
    CHECK_INT(ferry_objstore_exec(bad, &op), FERRY_ERR_PERMANENT);
    CHECK_STR(op.err.cls, FERRY_EC_S3_AUTH);
    fprintf(stderr, "  wrong target secret (multipart): %s\n", op.err.msg);
    ferry_objstore_destroy(bad);
    CHECK(missing_at(dst, dst_bucket, "badcreds/small"));
    CHECK_INT(uploads_in(dst, dst_bucket, "badcreds/"), 0);
}

/* A fake source: HEAD and ranged GET of one 20 MiB object, served like S3 (signatures not
 * checked). Part `fail_part` (5 MiB parts) breaks: mode 1 sends half its bytes and closes
 * the connection, mode 2 answers 503 SlowDown. */
typedef struct fake {
    int lfd, port;
    int fail_part, mode;
    uint64_t size;
    pthread_t thr;
    volatile int stop;
    int gets, failed;
    int uploads_at_failure; /* in-progress uploads seen when part fail_part was asked for */
} fake;

static int uploads_in(ferry_objstore *os, const char *bucket, const char *prefix);

/* From the fake's thread, with a store of its own (stores belong to one thread): the
 * target's in-progress uploads at the moment the source fails. */
static int observe_uploads(void)
{
    ferry_objstore_conf c;
    ferry_error err;
    ferry_objstore *os;
    int n;

    ferry_objstore_conf_init(&c);
    c.endpoint = ep2;
    c.region = region2;
    c.access_key = key2;
    c.secret_key = sec2;
    c.max_in_flight = 1;
    if (!(os = ferry_objstore_new(&c, &err)))
        return -1;
    n = uploads_in(os, dst_bucket, "aborted/");
    ferry_objstore_destroy(os);
    return n;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

typedef struct conn_arg {
    fake *f;
    int fd;
} conn_arg;

static void *fake_conn(void *arg)
{
    conn_arg *ca = arg;
    fake *f = ca->f;
    int fd = ca->fd;
    char req[16384];
    size_t have = 0;

    free(ca);
    for (;;) {
        char *end, hdr[512], *range, *body;
        uint64_t first = 0, last = f->size - 1, i;
        int is_head, n;
        ssize_t r;

        while (!(end = memmem(req, have, "\r\n\r\n", 4))) {
            if (have == sizeof(req) - 1 ||
                (r = recv(fd, req + have, sizeof(req) - 1 - have, 0)) <= 0)
                goto out;
            have += (size_t)r;
        }
        *end = '\0';
        is_head = !strncmp(req, "HEAD ", 5);
        range = strcasestr(req, "\r\nrange: bytes=");
        if (range)
            sscanf(range + 15, "%llu-%llu", (unsigned long long *)&first,
                   (unsigned long long *)&last);
        memmove(req, end + 4, have - (size_t)(end + 4 - req));
        have -= (size_t)(end + 4 - req);
        if (!is_head && range) {
            int part = (int)(first / (5 * MiB)) + 1;
            __atomic_add_fetch(&f->gets, 1, __ATOMIC_SEQ_CST);
            if (part == f->fail_part)
                __atomic_store_n(&f->uploads_at_failure, observe_uploads(), __ATOMIC_SEQ_CST);
            if (part == f->fail_part && f->mode == 2) {
                const char *x = "<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>"
                                "Please reduce your request rate.</Message></Error>";
                n = snprintf(hdr, sizeof(hdr),
                             "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/xml"
                             "\r\nContent-Length: %zu\r\n\r\n",
                             strlen(x));
                __atomic_store_n(&f->failed, 1, __ATOMIC_SEQ_CST);
                if (send_all(fd, hdr, (size_t)n) || send_all(fd, x, strlen(x)))
                    goto out;
                continue;
            }
        }
        n = snprintf(hdr, sizeof(hdr),
                     "HTTP/1.1 %s\r\nContent-Length: %llu\r\nETag: \"fakeetag0123456789\"\r\n"
                     "Content-Type: application/x-fake\r\nx-amz-meta-origin: fake\r\n%s\r\n",
                     range ? "206 Partial Content" : "200 OK",
                     (unsigned long long)(last - first + 1), "");
        if (send_all(fd, hdr, (size_t)n))
            goto out;
        if (is_head)
            continue;
        body = malloc(64 << 10);
        if (!body)
            goto out;
        for (i = first; i <= last;) {
            size_t k = 0;
            int part = (int)(first / (5 * MiB)) + 1;
            if (part == f->fail_part && f->mode == 1 && i - first >= (last - first + 1) / 2) {
                __atomic_store_n(&f->failed, 1, __ATOMIC_SEQ_CST);
                free(body);
                goto out; /* cut off mid-body */
            }
            while (k < (64 << 10) && i <= last)
                body[k++] = (char)byte_at(i++, 5);
            if (send_all(fd, body, k)) {
                free(body);
                goto out;
            }
        }
        free(body);
    }
out:
    close(fd);
    return NULL;
}

static void *fake_accept(void *arg)
{
    fake *f = arg;

    while (!f->stop) {
        conn_arg *ca;
        pthread_t t;
        int fd = accept(f->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        if (f->stop) {
            close(fd);
            break;
        }
        ca = malloc(sizeof(*ca));
        if (!ca) {
            close(fd);
            continue;
        }
        ca->f = f;
        ca->fd = fd;
        if (pthread_create(&t, NULL, fake_conn, ca) == 0)
            pthread_detach(t);
        else {
            close(fd);
            free(ca);
        }
    }
    return NULL;
}

static int fake_start(fake *f)
{
    struct sockaddr_in sa;
    socklen_t sl = sizeof(sa);
    int one = 1;

    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
        getsockname(f->lfd, (struct sockaddr *)&sa, &sl) || listen(f->lfd, 16))
        return -1;
    f->port = ntohs(sa.sin_port);
    return pthread_create(&f->thr, NULL, fake_accept, f);
}

static void fake_stop(fake *f)
{
    int fd;
    struct sockaddr_in sa;

    f->stop = 1;
    /* wake accept() */
    fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sa.sin_port = htons((uint16_t)f->port);
    if (fd >= 0) {
        connect(fd, (struct sockaddr *)&sa, sizeof(sa));
        close(fd);
    }
    pthread_join(f->thr, NULL);
    close(f->lfd);
}

static void failing_source_part(int mode, int max_in_flight)
{
    fake f;
    char ep[64], dkey[64];
    ferry_objstore *fsrc, *d;
    ferry_objstore_op op;

    memset(&f, 0, sizeof(f));
    f.size = 20 * MiB;
    f.fail_part = 2;
    f.mode = mode;
    CHECK_INT(fake_start(&f), 0);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
    fsrc = store(ep, "fake", "fake-secret", "us-east-1", 0, 0, 2);
    d = store(ep2, key2, sec2, region2, 5 * MiB, 256 << 10, max_in_flight);
    CHECK(fsrc && d);
    if (fsrc && d) {
        snprintf(dkey, sizeof(dkey), "aborted/mode%d-%d.bin", mode, max_in_flight);
        ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
        op.src_store = fsrc;
        op.src_bucket = "fake-bucket";
        op.src_key = "object.bin";
        op.src_size = f.size;
        op.bucket = dst_bucket;
        op.key = dkey;
        CHECK_INT(ferry_objstore_exec(d, &op), FERRY_ERR_RETRYABLE);
        CHECK(strstr(op.err.msg, "part 2/4") != NULL); /* failed after the upload existed */
        CHECK(strstr(op.err.msg, "GetObject") != NULL);
        fprintf(stderr, "  source fails in part 2 (mode %d, %d slots): %s\n", mode,
                max_in_flight, op.err.msg);
        CHECK(__atomic_load_n(&f.failed, __ATOMIC_SEQ_CST));
        /* the upload existed when the source failed (so LIST_UPLOADS would see an orphan) */
        CHECK_INT(__atomic_load_n(&f.uploads_at_failure, __ATOMIC_SEQ_CST), 1);
        /* no orphaned upload, no object */
        CHECK_INT(uploads_in(d, dst_bucket, "aborted/"), 0);
        CHECK(missing_at(d, dst_bucket, dkey));
    }
    ferry_objstore_destroy(fsrc);
    ferry_objstore_destroy(d);
    fake_stop(&f);
}

static void transfer_source_cut_mid_part_aborts_upload(void)
{
    failing_source_part(1, 2); /* one stream at a time: part 1 done, part 2 cut */
    failing_source_part(1, 8); /* four streams at once: siblings stopped */
}

static void transfer_source_slowdown_mid_part_aborts_upload(void) { failing_source_part(2, 2); }

/* The same fake without failures: metadata and content through a multipart stream. */
static void transfer_from_fake_source_succeeds(void)
{
    fake f;
    char ep[64];
    ferry_objstore *fsrc, *d;
    ferry_objstore_op op;

    memset(&f, 0, sizeof(f));
    f.size = 12 * MiB + 7;
    CHECK_INT(fake_start(&f), 0);
    snprintf(ep, sizeof(ep), "http://127.0.0.1:%d", f.port);
    fsrc = store(ep, "fake", "fake-secret", "us-east-1", 0, 0, 2);
    d = store(ep2, key2, sec2, region2, 5 * MiB, 64 << 10, 4);
    if (fsrc && d) {
        char *back = NULL;
        size_t len = 0, i, bad = 0;
        ferry_error err;
        ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
        op.src_store = fsrc;
        op.src_bucket = "fake-bucket";
        op.src_key = "object.bin";
        op.bucket = dst_bucket;
        op.key = "fake/ok.bin";
        CHECK_INT(ferry_objstore_exec(d, &op), FERRY_OK);
        if (op.rc != FERRY_OK)
            fprintf(stderr, "  fake source: %s\n", op.err.msg);
        CHECK(op.multipart);
        CHECK_INT(op.size, f.size);
        CHECK_INT(__atomic_load_n(&f.gets, __ATOMIC_SEQ_CST), 3);
        CHECK_INT(ferry_objstore_get(d, dst_bucket, "fake/ok.bin", f.size, &back, &len, &err),
                  FERRY_OK);
        CHECK_INT(len, f.size);
        for (i = 0; back && i < len; i++)
            bad += (unsigned char)back[i] != byte_at(i, 5);
        CHECK_INT(bad, 0);
        free(back);
    }
    ferry_objstore_destroy(fsrc);
    ferry_objstore_destroy(d);
    fake_stop(&f);
}

/* ---------------------------------------------------------------- memory */

static long vm_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);

    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, field, n) && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

static int reset_peak_rss(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    int rc = f && fputs("5", f) >= 0 ? 0 : -1;
    if (f && fclose(f))
        rc = -1;
    return rc;
}

/* One transfer of `size` bytes; returns the peak RSS growth in KiB during it. */
static long transfer_peak_kb(ferry_objstore *d, const char *key, uint64_t size,
                             const char *expect_etag, int multipart)
{
    ferry_objstore_op op;
    long before, after;
    int64_t t0;

    if (reset_peak_rss()) {
        fprintf(stderr, "  cannot reset VmHWM (/proc/self/clear_refs)\n");
        return -1;
    }
    before = vm_kb("VmHWM");
    t0 = ferry_mono_ms();
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_store = src;
    op.src_bucket = src_bucket;
    op.src_key = key;
    op.src_size = size;
    op.bucket = dst_bucket;
    op.key = key;
    CHECK_INT(ferry_objstore_exec(d, &op), FERRY_OK);
    after = vm_kb("VmHWM");
    fprintf(stderr, "  %llu MiB transferred in %lld ms\n", (unsigned long long)(size >> 20),
            (long long)(ferry_mono_ms() - t0));
    if (op.rc != FERRY_OK)
        fprintf(stderr, "  transfer %s: %s\n", key, op.err.msg);
    CHECK_INT(op.size, size);
    CHECK_INT(op.multipart, multipart);
    if (expect_etag)
        CHECK_STR(op.etag, expect_etag);
    return after - before;
}

static void transfer_memory_is_bounded_by_the_buffer(void)
{
    const size_t size = 64 * MiB;
    char etag[FERRY_OBJSTORE_ETAG_MAX];
    ferry_objstore *d;
    ferry_error err;
    long grew;
    char *data = make_data(size, 64);

    CHECK(data != NULL);
    if (!data)
        return;
    CHECK_INT(ferry_objstore_put(src, src_bucket, "mem/64mib.bin", data, size, NULL, etag,
                                 &err),
              FERRY_OK);
    free(data); /* mmap'd: gone from RSS */

    /* single PUT of 64 MiB through a 256 KiB ring */
    d = store(ep2, key2, sec2, region2, 128 * MiB, 256 << 10, 2);
    if (!d)
        return;
    grew = transfer_peak_kb(d, "mem/64mib.bin", size, etag, 0);
    fprintf(stderr, "  64 MiB single PUT, 256 KiB buffer: peak RSS grew by %ld KiB\n", grew);
    CHECK(grew >= 0 && grew < RSS_BOUND_KB);
    ferry_objstore_destroy(d);

    /* multipart: 8 parts of 8 MiB, 4 at a time, 256 KiB each */
    {
        ferry_objstore_conf c;
        ferry_objstore_conf_init(&c);
        c.endpoint = ep2;
        c.region = region2;
        c.access_key = key2;
        c.secret_key = sec2;
        c.max_in_flight = 8;
        c.multipart_threshold = 32 * MiB;
        c.multipart_part_size = 8 * MiB;
        c.transfer_buffer_bytes = 256 << 10;
        d = ferry_objstore_new(&c, &err);
    }
    CHECK(d != NULL);
    if (!d)
        return;
    grew = transfer_peak_kb(d, "mem/64mib.bin", size, NULL, 1);
    fprintf(stderr, "  64 MiB in 8 MiB parts, 4 streams of 256 KiB: peak RSS grew by %ld KiB\n",
            grew);
    CHECK(grew >= 0 && grew < RSS_BOUND_KB);
    ferry_objstore_destroy(d);

    /* Control: the probe does see a buffered copy of the object. */
    if (reset_peak_rss() == 0) {
        long before = vm_kb("VmHWM");
        char *back = NULL;
        size_t len = 0;
        CHECK_INT(ferry_objstore_get(src, src_bucket, "mem/64mib.bin", size, &back, &len, &err),
                  FERRY_OK);
        grew = vm_kb("VmHWM") - before;
        free(back);
        fprintf(stderr, "  control: a buffered GET of it grew peak RSS by %ld KiB\n", grew);
        CHECK(grew > 48 * 1024);
    }
}

/* ---------------------------------------------------------------- misuse */

static void transfer_misuse_is_refused(void)
{
    ferry_objstore_op op;
    ferry_objstore *one = store(ep2, key2, sec2, region2, 0, 0, 1);
    ferry_objstore_conf c;
    ferry_objstore *v2 = NULL;
    ferry_error err;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_TRANSFER);
    op.src_bucket = src_bucket;
    op.src_key = keys[0];
    op.bucket = dst_bucket;
    op.key = "misuse";
    CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_ERR_PERMANENT); /* no source store */
    CHECK_STR(op.err.cls, FERRY_EC_CONFIG);
    op.src_store = src;
    if (one) {
        CHECK_INT(ferry_objstore_exec(one, &op), FERRY_ERR_PERMANENT);
        CHECK(strstr(op.err.msg, "max_in_flight") != NULL);
        fprintf(stderr, "  one slot: %s\n", op.err.msg);
    }
    ferry_objstore_conf_init(&c);
    c.backend = "libs3";
    c.endpoint = ep1;
    c.access_key = key1;
    c.secret_key = sec1;
    v2 = ferry_objstore_new(&c, &err);
    if (v2) {
        op.src_store = v2;
        CHECK_INT(ferry_objstore_exec(dst, &op), FERRY_ERR_PERMANENT);
        CHECK(strstr(op.err.msg, "sigv4") != NULL);
    }
    ferry_objstore_destroy(v2);
    ferry_objstore_destroy(one);
    /* ABORT_UPLOAD of an unknown upload: S3's NoSuchUpload */
    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_ABORT_UPLOAD);
    op.bucket = dst_bucket;
    op.key = "nothing";
    op.upload_id = "no-such-upload";
    ferry_objstore_exec(dst, &op);
    fprintf(stderr, "  abort unknown upload: %s\n", op.rc ? op.err.msg : "ok");
    CHECK(op.rc == FERRY_OK || !strcmp(op.err.cls, FERRY_EC_S3_NOT_FOUND));
}

static void cleanup(ferry_objstore *os, const char *bucket)
{
    ferry_objstore_listing l;
    ferry_error err;
    size_t i;
    int more = 1;

    ferry_objstore_listing_init(&l);
    while (more &&
           ferry_objstore_list(os, bucket, NULL, NULL, NULL, 1000, &l, &err) == FERRY_OK) {
        for (i = 0; i < l.count; i++)
            ferry_objstore_delete(os, bucket, l.entries[i].key, &err);
        more = l.is_truncated && l.count > 0;
    }
    ferry_objstore_listing_free(&l);
}

int main(void)
{
    ferry_error err;

    ep1 = integ_require_env("FERRY_S3_ENDPOINT");
    key1 = integ_require_env("AWS_ACCESS_KEY_ID");
    sec1 = integ_require_env("AWS_SECRET_ACCESS_KEY");
    ep2 = integ_require_env("FERRY_S3_ENDPOINT_2");
    key2 = integ_require_env("FERRY_S3_ACCESS_KEY_ID_2");
    sec2 = integ_require_env("FERRY_S3_SECRET_ACCESS_KEY_2");
    region2 = getenv("FERRY_S3_REGION_2");
    if (!region2 || !*region2)
        region2 = "us-east-1";
    snprintf(src_bucket, sizeof(src_bucket), "ferry-tx-%ld-%d-src", (long)time(NULL),
             (int)getpid());
    snprintf(dst_bucket, sizeof(dst_bucket), "ferry-tx-%ld-%d-dst", (long)time(NULL),
             (int)getpid());
    src = store(ep1, key1, sec1, getenv("FERRY_S3_REGION"), 0, 0, 8);
    dst = store(ep2, key2, sec2, region2, 5 * MiB, 0, 8);
    if (!src || !dst)
        return 1;
    if (ferry_objstore_create_bucket(src, src_bucket, &err) != FERRY_OK ||
        ferry_objstore_create_bucket(dst, dst_bucket, &err) != FERRY_OK) {
        fprintf(stderr, "create bucket: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "%s/%s -> %s/%s\n", ep1, src_bucket, ep2, dst_bucket);
    RUN(transfer_small_objects_across_endpoints);
    RUN(transfer_multipart_20mib);
    RUN(transfer_mixed_batch_on_three_slots);
    RUN(transfer_missing_source_creates_nothing);
    RUN(transfer_stale_source_etag_is_412);
    RUN(transfer_wrong_target_credentials);
    RUN(transfer_from_fake_source_succeeds);
    RUN(transfer_source_cut_mid_part_aborts_upload);
    RUN(transfer_source_slowdown_mid_part_aborts_upload);
    RUN(transfer_memory_is_bounded_by_the_buffer);
    RUN(transfer_misuse_is_refused);
    cleanup(src, src_bucket);
    cleanup(dst, dst_bucket);
    ferry_objstore_destroy(src);
    ferry_objstore_destroy(dst);
    return TEST_EXIT();
}
