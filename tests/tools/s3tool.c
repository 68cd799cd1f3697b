/* ferry-s3tool: what tests and the demo need from S3, through ferry's own object store
 * (so it signs exactly like the worker does):
 *   mb BUCKET                         create a bucket (ok if it is ours already)
 *   seed s3://B/P --count N [--min-size A] [--max-size B] [--seed S]
 *                                     write N deterministic objects (plus a few awkward
 *                                     key names); prints "<objects> <bytes>"
 *   compare s3://SRC s3://DST         GET every source object and its target copy and
 *                                     compare bytes; exit 1 on any difference
 *   count s3://B/P                    prints "<objects> <bytes>"
 *   ls s3://B/P                       prints "<size> <key>" for each object, in key order
 *   rm BUCKET KEY                     deletes one object (KEY as is, like put)
 *   put BUCKET KEY [BODY]             write one object, its body BODY (default: the key);
 *                                     KEY is taken as is (no URI parsing), so keys such as
 *                                     "a//b", "x/../y" or "dir/" can be written;
 *                                     S3TOOL_PUT_CHECKSUM=SHA256 sends its checksum;
 *                                     BODY @PATH: the file's bytes (binary is fine)
 * Endpoint and credentials: FERRY_S3_ENDPOINT, FERRY_S3_REGION, AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_checksum.h"
#include "ferry_objstore.h"
#include "ferry_uri.h"

/* dst: the compare target, which S3TOOL_DST_ENDPOINT / _ACCESS_KEY_ID /
 * _SECRET_ACCESS_KEY may put on another endpoint. */
static ferry_objstore *open_store(int dst)
{
    ferry_objstore_conf oc;
    ferry_error err = {0};
    ferry_objstore *os;
    int other = dst && getenv("S3TOOL_DST_ENDPOINT");
    ferry_objstore_conf_init(&oc);
    oc.endpoint = getenv(other ? "S3TOOL_DST_ENDPOINT" : "FERRY_S3_ENDPOINT");
    oc.region = getenv("FERRY_S3_REGION");
    oc.ca_file = getenv("FERRY_S3_CA_FILE"); /* the secured stack's private CA */
    oc.access_key = getenv(other ? "S3TOOL_DST_ACCESS_KEY_ID" : "AWS_ACCESS_KEY_ID");
    oc.secret_key = getenv(other ? "S3TOOL_DST_SECRET_ACCESS_KEY" : "AWS_SECRET_ACCESS_KEY");
    oc.max_in_flight = 32;
    if (!oc.endpoint || !oc.access_key || !oc.secret_key) {
        fprintf(stderr,
                "s3tool: set FERRY_S3_ENDPOINT, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY\n");
        return NULL;
    }
    if (!(os = ferry_objstore_new(&oc, &err)))
        fprintf(stderr, "s3tool: %s\n", err.msg);
    return os;
}

static int parse_uri(const char *text, ferry_uri *u)
{
    ferry_error err = {0};
    if (ferry_uri_parse(text, u, &err) != FERRY_OK) {
        fprintf(stderr, "s3tool: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Key names that exercise URL encoding and signing. */
static const char *const awkward[] = {"with space/a b.txt",
                                      "unicode/\xc3\xa9t\xc3\xa9-\xe6\x97\xa5.csv",
                                      "signs/a+b=c&d~e%f.bin", "deep/a/b/c/d/e/f/g.json"};

static int cmd_seed(ferry_objstore *os, int argc, char **argv)
{
    ferry_uri u;
    long count = 100, min = 0, max = 65536;
    uint64_t seed = 1, total = 0;
    size_t batch = 64, n_awk;
    int rc = 0;

    if (argc < 1 || parse_uri(argv[0], &u))
        return 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--count"))
            count = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--min-size"))
            min = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--max-size"))
            max = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--seed"))
            seed = strtoull(argv[i + 1], NULL, 10);
        else {
            fprintf(stderr, "s3tool seed: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (count < 0 || min < 0 || max < min)
        return 2;
    n_awk = count >= 10 ? sizeof(awkward) / sizeof(awkward[0]) : 0;
    {
        ferry_objstore_op *ops = calloc(batch, sizeof(*ops));
        char(*keys)[1100] = calloc(batch, sizeof(*keys));
        char **bodies = calloc(batch, sizeof(*bodies));
        long done = 0;
        if (!ops || !keys || !bodies)
            return 1;
        while (done < count && rc == 0) {
            size_t n = 0;
            for (; n < batch && done < count; n++, done++) {
                uint64_t s = seed * 1000003u + (uint64_t)done;
                size_t size = (size_t)(min + (long)(splitmix(&s) % (uint64_t)(max - min + 1)));
                if ((size_t)done < n_awk)
                    snprintf(keys[n], sizeof(keys[n]), "%s%s", u.prefix, awkward[done]);
                else
                    snprintf(keys[n], sizeof(keys[n]), "%sdir%02ld/obj-%06ld.bin", u.prefix,
                             done % 17, done);
                bodies[n] = malloc(size ? size : 1);
                for (size_t b = 0; b < size; b += 8) {
                    uint64_t v = splitmix(&s);
                    memcpy(bodies[n] + b, &v, size - b < 8 ? size - b : 8);
                }
                ferry_objstore_op_init(&ops[n], FERRY_OBJSTORE_OP_PUT);
                ops[n].bucket = u.bucket;
                ops[n].key = keys[n];
                ops[n].put_data = bodies[n];
                ops[n].put_len = size;
                total += size;
            }
            ferry_objstore_run_batch(os, ops, n, NULL);
            for (size_t i = 0; i < n; i++) {
                if (ops[i].rc != FERRY_OK) {
                    fprintf(stderr, "s3tool seed: %s\n", ops[i].err.msg);
                    rc = 1;
                }
                free(bodies[i]);
            }
        }
        free(ops);
        free(keys);
        free(bodies);
    }
    if (rc == 0)
        printf("%ld %" PRIu64 "\n", count, total);
    return rc;
}

typedef int (*entry_fn)(ferry_objstore *os, const ferry_uri *u, const ferry_objstore_entry *e,
                        void *opaque);

static int walk(ferry_objstore *os, const ferry_uri *u, entry_fn fn, void *opaque)
{
    ferry_objstore_listing l;
    ferry_error err = {0};
    char *token = NULL;
    int rc = 0;
    ferry_objstore_listing_init(&l);
    do {
        if (ferry_objstore_list(os, u->bucket, u->prefix, NULL, token, 1000, &l, &err) !=
            FERRY_OK) {
            fprintf(stderr, "s3tool: listing: %s\n", err.msg);
            rc = 1;
            break;
        }
        free(token);
        token = l.is_truncated && l.next_token ? strdup(l.next_token) : NULL;
        for (size_t i = 0; i < l.count && rc == 0; i++)
            rc = fn(os, u, &l.entries[i], opaque);
    } while (rc == 0 && l.is_truncated);
    free(token);
    ferry_objstore_listing_free(&l);
    return rc;
}

typedef struct counts {
    uint64_t objects, bytes, differ, missing;
    const ferry_uri *dst;
    ferry_objstore *dst_os;
} counts;

static int count_one(ferry_objstore *os, const ferry_uri *u, const ferry_objstore_entry *e,
                     void *opaque)
{
    counts *c = opaque;
    c->objects++;
    c->bytes += e->size;
    return 0;
}

static int print_one(ferry_objstore *os, const ferry_uri *u, const ferry_objstore_entry *e,
                     void *opaque)
{
    (void)os;
    (void)u;
    (void)opaque;
    printf("%" PRIu64 " %s\n", e->size, e->key);
    return 0;
}

/* The whole file at path into a malloc'd buffer; NULL on failure (said on stderr). */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long n;

    if (!f || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        !(buf = malloc((size_t)n + 1)) || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "s3tool put: cannot read %s\n", path);
        free(buf);
        buf = NULL;
    } else {
        *len = (size_t)n;
    }
    if (f)
        fclose(f);
    return buf;
}

static int compare_one(ferry_objstore *os, const ferry_uri *u, const ferry_objstore_entry *e,
                       void *opaque)
{
    counts *c = opaque;
    char key[2200], *a = NULL, *b = NULL;
    size_t al = 0, bl = 0;
    ferry_error err = {0};

    snprintf(key, sizeof(key), "%s%s", c->dst->prefix, e->key + strlen(u->prefix));
    if (ferry_objstore_get(os, u->bucket, e->key, 1u << 30, &a, &al, &err) != FERRY_OK) {
        fprintf(stderr, "s3tool compare: source %s: %s\n", e->key, err.msg);
        return 1;
    }
    if (ferry_objstore_get(c->dst_os, c->dst->bucket, key, 1u << 30, &b, &bl, &err) !=
        FERRY_OK) {
        fprintf(stderr, "s3tool compare: MISSING %s: %s\n", key, err.msg);
        c->missing++;
    } else if (al != bl || memcmp(a, b, al) != 0) {
        fprintf(stderr, "s3tool compare: DIFFERENT %s (%zu vs %zu bytes)\n", key, al, bl);
        c->differ++;
    }
    c->objects++;
    c->bytes += al;
    free(a);
    free(b);
    return 0;
}

/* "sum ALGO FILE": the S3 checksum of a file, as x-amz-checksum-<algo> carries it (for
 * seeding objects with an algorithm the server does not compute, e.g. CRC64NVME). */
static int cmd_sum(const char *algo, const char *path)
{
    static unsigned char buf[1 << 16];
    char out[FERRY_CHECKSUM_B64_MAX];
    ferry_checksum c;
    FILE *f = fopen(path, "rb");
    size_t n;
    int rc = 1;

    if (!f) {
        fprintf(stderr, "s3tool sum: %s: cannot open\n", path);
        return 1;
    }
    if (ferry_checksum_init(&c, ferry_checksum_algo_parse(algo))) {
        fprintf(stderr, "s3tool sum: unknown algorithm %s\n", algo);
        goto cleanup;
    }
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
        ferry_checksum_update(&c, buf, n);
    if (ferror(f) || ferry_checksum_final_b64(&c, out, sizeof(out))) {
        ferry_checksum_clear(&c);
        fprintf(stderr, "s3tool sum: %s: read or checksum failed\n", path);
        goto cleanup;
    }
    printf("%s\n", out);
    rc = 0;
cleanup:
    fclose(f);
    return rc;
}

int main(int argc, char **argv)
{
    ferry_objstore *os;
    ferry_error err = {0};
    int rc = 2;

    if (argc < 3) {
        fprintf(stderr, "usage: ferry-s3tool mb BUCKET | seed s3://B/P [--count N] "
                        "[--min-size A] [--max-size B] [--seed S] | compare s3://SRC s3://DST "
                        "| count s3://B/P | ls s3://B/P | rm BUCKET KEY | uploads s3://B/P "
                        "| put BUCKET KEY [BODY|@FILE] "
                        "| sum CRC32|CRC32C|CRC64NVME|SHA1|SHA256 FILE\n");
        return 2;
    }
    if (!strcmp(argv[1], "sum") && argc >= 4)
        return cmd_sum(argv[2], argv[3]);
    if (!(os = open_store(0)))
        return 1;
    if (!strcmp(argv[1], "mb")) {
        rc = ferry_objstore_create_bucket(os, argv[2], &err) == FERRY_OK ? 0 : 1;
        if (rc)
            fprintf(stderr, "s3tool mb: %s\n", err.msg);
    } else if (!strcmp(argv[1], "seed")) {
        rc = cmd_seed(os, argc - 2, argv + 2);
    } else if (!strcmp(argv[1], "put") && argc >= 4) {
        const char *body = argc >= 5 ? argv[4] : argv[3];
        char *file = NULL;
        size_t len = strlen(body);
        ferry_objstore_op op;
        if (body[0] == '@' && !(body = file = slurp(body + 1, &len))) {
            rc = 1;
        } else {
            ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_PUT);
            op.bucket = argv[2];
            op.key = argv[3];
            op.put_data = body;
            op.put_len = len;
            op.checksum_algorithm = getenv("S3TOOL_PUT_CHECKSUM"); /* e.g. SHA256 */
            rc = ferry_objstore_exec(os, &op) == FERRY_OK ? 0 : 1;
            if (rc)
                fprintf(stderr, "s3tool put: %s\n", op.err.msg);
        }
        free(file);
    } else if (!strcmp(argv[1], "rm") && argc >= 4) {
        rc = ferry_objstore_delete(os, argv[2], argv[3], &err) == FERRY_OK ? 0 : 1;
        if (rc)
            fprintf(stderr, "s3tool rm: %s\n", err.msg);
    } else if (!strcmp(argv[1], "ls")) {
        ferry_uri u;
        if (parse_uri(argv[2], &u) == 0)
            rc = walk(os, &u, print_one, NULL);
    } else if (!strcmp(argv[1], "count")) {
        ferry_uri u;
        counts c = {0};
        if (parse_uri(argv[2], &u) == 0 && (rc = walk(os, &u, count_one, &c)) == 0)
            printf("%" PRIu64 " %" PRIu64 "\n", c.objects, c.bytes);
    } else if (!strcmp(argv[1], "uploads")) {
        /* In-progress multipart uploads under the prefix (first 1000): "KEY UPLOAD_ID". */
        ferry_uri u;
        ferry_objstore_listing l;
        ferry_objstore_op op;
        ferry_objstore_listing_init(&l);
        if (parse_uri(argv[2], &u) == 0) {
            ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_LIST_UPLOADS);
            op.bucket = u.bucket;
            op.prefix = u.prefix;
            op.listing = &l;
            rc = ferry_objstore_exec(os, &op) == FERRY_OK ? 0 : 1;
            if (rc)
                fprintf(stderr, "s3tool uploads: %s\n", op.err.msg);
            for (size_t i = 0; !rc && i < l.count; i++)
                printf("%s %s\n", l.entries[i].key, l.entries[i].upload_id);
        }
        ferry_objstore_listing_free(&l);
    } else if (!strcmp(argv[1], "compare") && argc >= 4) {
        ferry_uri s, d;
        counts c = {0};
        if (parse_uri(argv[2], &s) == 0 && parse_uri(argv[3], &d) == 0) {
            c.dst = &d;
            c.dst_os = getenv("S3TOOL_DST_ENDPOINT") ? open_store(1) : os;
            rc = c.dst_os ? walk(os, &s, compare_one, &c) : 1;
            if (c.dst_os && c.dst_os != os)
                ferry_objstore_destroy(c.dst_os);
            if (rc == 0 && (c.missing || c.differ))
                rc = 1;
            printf("compared %" PRIu64 " objects (%" PRIu64 " bytes): %" PRIu64
                   " missing, %" PRIu64 " different\n",
                   c.objects, c.bytes, c.missing, c.differ);
        }
    } else {
        fprintf(stderr, "s3tool: unknown command %s\n", argv[1]);
    }
    ferry_objstore_destroy(os);
    return rc;
}
