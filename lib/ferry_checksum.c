/* CRCs by slicing-by-8 (eight tables per polynomial, built once), digests by OpenSSL's
 * EVP. All three CRCs are reflected with an all-ones start and final xor. */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/evp.h>

#include "ferry_checksum.h"

#define POLY_CRC32 0xEDB88320u  /* ISO-HDLC, as zlib */
#define POLY_CRC32C 0x82F63B78u /* Castagnoli */
#define POLY_CRC64NVME 0x9A6C9329AC4BC9B5ull

/* 64-bit entries for all three: a reflected 32-bit CRC never sets the upper half, so one
 * table shape and one loop serve them all. */
static uint64_t t32[8][256], t32c[8][256], t64[8][256];
static pthread_once_t tables_once = PTHREAD_ONCE_INIT;

static void build(uint64_t t[8][256], uint64_t poly)
{
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
        t[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (int s = 1; s < 8; s++)
            t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xff];
}

static void build_tables(void)
{
    build(t32, POLY_CRC32);
    build(t32c, POLY_CRC32C);
    build(t64, POLY_CRC64NVME);
}

/* Little-endian load: the byte order slicing-by-8 consumes, whatever the host's. */
static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t crc_run(uint64_t t[8][256], uint64_t crc, const unsigned char *p, size_t n)
{
    while (n >= 8) {
        uint64_t v = load_le64(p) ^ crc;
        crc = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^
              t[4][(v >> 24) & 0xff] ^ t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^
              t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return crc;
}

static const struct {
    const char *name;
    ferry_checksum_algo algo;
    size_t raw; /* bytes of the value before base64 */
} algos[] = {
    {"CRC32", FERRY_CHECKSUM_CRC32, 4},         {"CRC32C", FERRY_CHECKSUM_CRC32C, 4},
    {"CRC64NVME", FERRY_CHECKSUM_CRC64NVME, 8}, {"SHA1", FERRY_CHECKSUM_SHA1, 20},
    {"SHA256", FERRY_CHECKSUM_SHA256, 32},
};

ferry_checksum_algo ferry_checksum_algo_parse_n(const char *name, size_t len)
{
    for (size_t i = 0; name && i < sizeof(algos) / sizeof(algos[0]); i++)
        if (len == strlen(algos[i].name) && !strncasecmp(name, algos[i].name, len))
            return algos[i].algo;
    return FERRY_CHECKSUM_NONE;
}

ferry_checksum_algo ferry_checksum_algo_parse(const char *name)
{
    return name ? ferry_checksum_algo_parse_n(name, strlen(name)) : FERRY_CHECKSUM_NONE;
}

const char *ferry_checksum_algo_name(ferry_checksum_algo algo)
{
    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
        if (algos[i].algo == algo)
            return algos[i].name;
    return NULL;
}

size_t ferry_checksum_b64_len(ferry_checksum_algo algo)
{
    for (size_t i = 0; i < sizeof(algos) / sizeof(algos[0]); i++)
        if (algos[i].algo == algo)
            return (algos[i].raw + 2) / 3 * 4;
    return 0;
}

int ferry_checksum_init(ferry_checksum *c, ferry_checksum_algo algo)
{
    const EVP_MD *md = algo == FERRY_CHECKSUM_SHA1     ? EVP_sha1()
                       : algo == FERRY_CHECKSUM_SHA256 ? EVP_sha256()
                                                       : NULL;

    memset(c, 0, sizeof(*c));
    if (!ferry_checksum_b64_len(algo))
        return -1;
    c->algo = algo;
    if (md) {
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        if (!ctx || !EVP_DigestInit_ex(ctx, md, NULL)) {
            EVP_MD_CTX_free(ctx);
            c->algo = FERRY_CHECKSUM_NONE;
            return -1;
        }
        c->md = ctx;
        return 0;
    }
    pthread_once(&tables_once, build_tables);
    c->crc = algo == FERRY_CHECKSUM_CRC64NVME ? ~0ull : 0xFFFFFFFFu;
    return 0;
}

void ferry_checksum_update(ferry_checksum *c, const void *data, size_t len)
{
    switch (c->algo) {
    case FERRY_CHECKSUM_CRC32: c->crc = crc_run(t32, c->crc, data, len); break;
    case FERRY_CHECKSUM_CRC32C: c->crc = crc_run(t32c, c->crc, data, len); break;
    case FERRY_CHECKSUM_CRC64NVME: c->crc = crc_run(t64, c->crc, data, len); break;
    case FERRY_CHECKSUM_SHA1:
    case FERRY_CHECKSUM_SHA256:
        if (c->md && !EVP_DigestUpdate(c->md, data, len)) {
            EVP_MD_CTX_free(c->md); /* _final sees no context and fails */
            c->md = NULL;
        }
        break;
    default: break;
    }
}

int ferry_checksum_final_b64(ferry_checksum *c, char *out, size_t size)
{
    unsigned char raw[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    int rc = -1;

    if (!ferry_checksum_b64_len(c->algo) || size <= ferry_checksum_b64_len(c->algo))
        goto cleanup;
    if (c->algo == FERRY_CHECKSUM_SHA1 || c->algo == FERRY_CHECKSUM_SHA256) {
        if (!c->md || !EVP_DigestFinal_ex(c->md, raw, &n))
            goto cleanup;
    } else {
        uint64_t v = c->algo == FERRY_CHECKSUM_CRC64NVME ? ~c->crc : (~c->crc & 0xFFFFFFFFu);
        n = c->algo == FERRY_CHECKSUM_CRC64NVME ? 8 : 4;
        for (unsigned i = 0; i < n; i++) /* big-endian, as S3 shows it */
            raw[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
    }
    rc = EVP_EncodeBlock((unsigned char *)out, raw, (int)n) ==
                 (int)ferry_checksum_b64_len(c->algo)
             ? 0
             : -1;
cleanup:
    ferry_checksum_clear(c);
    return rc;
}

void ferry_checksum_clear(ferry_checksum *c)
{
    EVP_MD_CTX_free(c->md);
    c->md = NULL;
    c->algo = FERRY_CHECKSUM_NONE;
}
