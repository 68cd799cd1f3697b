/* Pure logic of ferry_mpu: the record key of a target object -- under the lease's hash
 * tag, distinct per bucket and key, refused for hostile dataset names and short
 * buffers. */
#include <stdio.h>
#include <string.h>

#include "ferry_mpu.h"
#include "ferry_test.h"

static void test_key_shape(void)
{
    char a[FERRY_MPU_KEY_MAX], b[FERRY_MPU_KEY_MAX];
    ferry_error err;

    CHECK_INT(ferry_mpu_key(a, sizeof(a), "sales", "bkt", "dir/obj.bin", &err), FERRY_OK);
    CHECK(strncmp(a, "ferry:{sales}:mpu:", 18) == 0);
    CHECK_INT((int)strlen(a), 18 + 16);
    for (const char *p = a + 18; *p; p++)
        CHECK((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f'));
    /* deterministic */
    CHECK_INT(ferry_mpu_key(b, sizeof(b), "sales", "bkt", "dir/obj.bin", &err), FERRY_OK);
    CHECK_STR(a, b);
    /* another key, another bucket, and the bucket/key boundary all matter */
    CHECK_INT(ferry_mpu_key(b, sizeof(b), "sales", "bkt", "dir/obj.bin2", &err), FERRY_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(ferry_mpu_key(b, sizeof(b), "sales", "bkt2", "dir/obj.bin", &err), FERRY_OK);
    CHECK(strcmp(a, b) != 0);
    CHECK_INT(ferry_mpu_key(a, sizeof(a), "sales", "ab", "c", &err), FERRY_OK);
    CHECK_INT(ferry_mpu_key(b, sizeof(b), "sales", "a", "bc", &err), FERRY_OK);
    CHECK(strcmp(a, b) != 0);
    /* a chunk's lease names the record too */
    CHECK_INT(ferry_mpu_key(a, sizeof(a), "sales#3", "bkt", "k", &err), FERRY_OK);
    CHECK(strncmp(a, "ferry:{sales#3}:mpu:", 20) == 0);
}

static void test_key_refused(void)
{
    char buf[FERRY_MPU_KEY_MAX];
    ferry_error err;

    CHECK_INT(ferry_mpu_key(buf, sizeof(buf), "evil}x{", "b", "k", &err), FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INVALID_SPEC);
    CHECK_STR(buf, "");
    CHECK_INT(ferry_mpu_key(buf, sizeof(buf), "", "b", "k", &err), FERRY_ERR_PERMANENT);
    CHECK_INT(ferry_mpu_key(buf, 20, "sales", "b", "k", &err), FERRY_ERR_PERMANENT);
    CHECK_STR(buf, "");
    CHECK_INT(ferry_mpu_key(buf, sizeof(buf), "sales", NULL, "k", &err), FERRY_ERR_PERMANENT);
}

int main(void)
{
    RUN(test_key_shape);
    RUN(test_key_refused);
    return TEST_EXIT();
}
