/* ferry_checksum: the five S3 checksums against published check values ("123456789") and
 * values computed by zlib/hashlib and bit-by-bit reference code, fed whole and in uneven
 * pieces (the slicing path and the byte tail must agree); names and sizes. */
#include <string.h>

#include "ferry_checksum.h"
#include "ferry_test.h"

static const char *sum(ferry_checksum_algo algo, const void *data, size_t len, size_t piece)
{
    static char out[FERRY_CHECKSUM_B64_MAX];
    ferry_checksum c;
    const unsigned char *p = data;

    if (ferry_checksum_init(&c, algo))
        return "init failed";
    while (len) {
        size_t n = piece && piece < len ? piece : len;
        ferry_checksum_update(&c, p, n);
        p += n;
        len -= n;
    }
    if (ferry_checksum_final_b64(&c, out, sizeof(out)))
        return "final failed";
    return out;
}

static void test_check_values(void)
{
    const char *nine = "123456789";

    CHECK_STR(sum(FERRY_CHECKSUM_CRC32, nine, 9, 0), "y/Q5Jg==");  /* 0xCBF43926 */
    CHECK_STR(sum(FERRY_CHECKSUM_CRC32C, nine, 9, 0), "4waSgw=="); /* 0xE3069283 */
    CHECK_STR(sum(FERRY_CHECKSUM_CRC64NVME, nine, 9, 0),
              "rosUhgp5mIg="); /* 0xAE8B14860A799888 */
    CHECK_STR(sum(FERRY_CHECKSUM_SHA1, nine, 9, 0), "98O8HYCOBHMq32eZZczDTKeuNEE=");
    CHECK_STR(sum(FERRY_CHECKSUM_SHA256, "hello world", 11, 0),
              "uU0nuZNNPgilLlLX2n2r+sSE7+N6U4DukIj3rOLvzek=");
    CHECK_STR(sum(FERRY_CHECKSUM_CRC32C, "hello world", 11, 0), "yZRlqg==");
    CHECK_STR(sum(FERRY_CHECKSUM_CRC32, "", 0, 0), "AAAAAA==");
}

static void test_pieces(void)
{
    unsigned char d[1000];
    static const size_t pieces[] = {0, 1, 3, 7, 8, 9, 64, 999};

    for (size_t i = 0; i < sizeof(d); i++)
        d[i] = (unsigned char)((i * 131 + 7) & 0xff);
    for (size_t i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
        CHECK_STR(sum(FERRY_CHECKSUM_CRC32, d, sizeof(d), pieces[i]), "HtV7uQ==");
        CHECK_STR(sum(FERRY_CHECKSUM_CRC32C, d, sizeof(d), pieces[i]), "jboFDQ==");
        CHECK_STR(sum(FERRY_CHECKSUM_CRC64NVME, d, sizeof(d), pieces[i]), "TByYOhLtV9A=");
    }
    /* unaligned start */
    CHECK_STR(sum(FERRY_CHECKSUM_CRC32C, "x123456789" + 1, 9, 5), "4waSgw==");
}

static void test_names(void)
{
    ferry_checksum c;
    char small[8];

    CHECK_INT(ferry_checksum_algo_parse("CRC32"), FERRY_CHECKSUM_CRC32);
    CHECK_INT(ferry_checksum_algo_parse("crc32c"), FERRY_CHECKSUM_CRC32C);
    CHECK_INT(ferry_checksum_algo_parse("CRC64NVME"), FERRY_CHECKSUM_CRC64NVME);
    CHECK_INT(ferry_checksum_algo_parse("SHA256"), FERRY_CHECKSUM_SHA256);
    CHECK_INT(ferry_checksum_algo_parse("MD5"), FERRY_CHECKSUM_NONE);
    CHECK_INT(ferry_checksum_algo_parse(""), FERRY_CHECKSUM_NONE);
    CHECK_INT(ferry_checksum_algo_parse(NULL), FERRY_CHECKSUM_NONE);
    CHECK_INT(ferry_checksum_algo_parse_n("crc32c-extra", 5), FERRY_CHECKSUM_CRC32);
    CHECK_STR(ferry_checksum_algo_name(FERRY_CHECKSUM_CRC64NVME), "CRC64NVME");
    CHECK(ferry_checksum_algo_name(FERRY_CHECKSUM_NONE) == NULL);
    CHECK_INT((int)ferry_checksum_b64_len(FERRY_CHECKSUM_CRC32), 8);
    CHECK_INT((int)ferry_checksum_b64_len(FERRY_CHECKSUM_CRC64NVME), 12);
    CHECK_INT((int)ferry_checksum_b64_len(FERRY_CHECKSUM_SHA1), 28);
    CHECK_INT((int)ferry_checksum_b64_len(FERRY_CHECKSUM_SHA256), 44);
    CHECK_INT((int)ferry_checksum_b64_len(FERRY_CHECKSUM_NONE), 0);
    CHECK_INT(ferry_checksum_init(&c, FERRY_CHECKSUM_NONE), -1);
    /* a buffer too small is refused, and the digest's context released (valgrind/ASan) */
    CHECK_INT(ferry_checksum_init(&c, FERRY_CHECKSUM_SHA256), 0);
    CHECK_INT(ferry_checksum_final_b64(&c, small, sizeof(small)), -1);
    CHECK_INT(ferry_checksum_init(&c, FERRY_CHECKSUM_SHA1), 0);
    ferry_checksum_clear(&c);
    ferry_checksum_clear(&c);
}

int main(void)
{
    RUN(test_check_values);
    RUN(test_pieces);
    RUN(test_names);
    return TEST_EXIT();
}
