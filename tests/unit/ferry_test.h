/* Minimal test harness: CHECK records a failure and goes on; main returns the count. */
#ifndef FERRY_TEST_H
#define FERRY_TEST_H

#include <stdio.h>
#include <string.h>

static int ferry_test_failures;

#define CHECK(cond)                                                                            \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);           \
            ferry_test_failures++;                                                             \
        }                                                                                      \
    } while (0)

#define CHECK_STR(a, b)                                                                        \
    do {                                                                                       \
        const char *a_ = (a), *b_ = (b);                                                       \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                               \
            fprintf(stderr, "%s:%d: CHECK_STR failed: \"%s\" != \"%s\"\n", __FILE__, __LINE__, \
                    a_ ? a_ : "(null)", b_ ? b_ : "(null)");                                   \
            ferry_test_failures++;                                                             \
        }                                                                                      \
    } while (0)

#define CHECK_INT(a, b)                                                                        \
    do {                                                                                       \
        long long a_ = (long long)(a), b_ = (long long)(b);                                    \
        if (a_ != b_) {                                                                        \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s = %lld, expected %lld\n", __FILE__,   \
                    __LINE__, #a, a_, b_);                                                     \
            ferry_test_failures++;                                                             \
        }                                                                                      \
    } while (0)

#define RUN(test)                                                                              \
    do {                                                                                       \
        int before_ = ferry_test_failures;                                                     \
        test();                                                                                \
        fprintf(stderr, "%s %s\n", ferry_test_failures == before_ ? "ok  " : "FAIL", #test);   \
    } while (0)

#define TEST_EXIT() (ferry_test_failures ? 1 : 0)

#endif
