/* ferry_error: set/prefix, and the bridge to an errstr buffer (ferry_error_to_errstr). */
#include "ferry_error.h"
#include "ferry_test.h"

static void test_bridge(void)
{
    ferry_error err = {0};
    char buf[128], tiny[8];

    ferry_error_set(&err, FERRY_ERR_RETRYABLE, FERRY_EC_REDIS, "redis %s: connect: %s",
                    "127.0.0.1:1/0", "Connection refused");
    CHECK_INT(ferry_error_to_errstr(&err, buf, sizeof(buf), "taking the %s", "lock"), -1);
    CHECK_STR(buf, "taking the lock: redis 127.0.0.1:1/0: connect: Connection refused");
    ferry_error_to_errstr(&err, buf, sizeof(buf), NULL);
    CHECK_STR(buf, "redis 127.0.0.1:1/0: connect: Connection refused");
    ferry_error_to_errstr(&err, tiny, sizeof(tiny), NULL); /* truncated, terminated */
    CHECK_STR(tiny, "redis 1");
    ferry_error_clear(&err);
    ferry_error_to_errstr(&err, buf, sizeof(buf), "ctx");
    CHECK_STR(buf, "ctx: unknown error");
    CHECK_INT(ferry_error_to_errstr(NULL, buf, 0, NULL), -1);
}

static void test_prefix(void)
{
    ferry_error err = {0};
    CHECK_INT(ferry_error_set(&err, FERRY_ERR_PERMANENT, NULL, "bad %d", 7),
              FERRY_ERR_PERMANENT);
    CHECK_STR(err.cls, FERRY_EC_INTERNAL);
    ferry_error_prefix(&err, "source");
    CHECK_STR(err.msg, "source: bad 7");
}

int main(void)
{
    RUN(test_bridge);
    RUN(test_prefix);
    return TEST_EXIT();
}
