/* Shared by integration tests: endpoints come from `scripts/stack env`. */
#ifndef INTEG_ENV_H
#define INTEG_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void integ_missing_env(const char *name)
{
    const char *ci = getenv("CI");
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "%s is not set but CI=true: the stack must be up\n", name);
        exit(1);
    }
    fprintf(stderr, "SKIP: %s not set (run `eval \"$(scripts/stack env)\"`)\n", name);
    exit(77);
}

/* FERRY_TEST_S3 picks the S3 server a test's first endpoint (FERRY_S3_ENDPOINT,
 * AWS_ACCESS_KEY_ID, ...) points at: "s3proxy" (default) or "moto" (the stack's
 * FERRY_S3_MOTO_* service). The second endpoint (FERRY_S3_ENDPOINT_2) stays S3Proxy, so
 * a cross-endpoint test on moto crosses implementations. Same rule in lib.sh. */
static inline void integ_select_s3(void)
{
    static int done;
    static const char *const map[][2] = {
        {"FERRY_S3_ENDPOINT", "FERRY_S3_MOTO_ENDPOINT"},
        {"FERRY_S3_REGION", "FERRY_S3_MOTO_REGION"},
        {"AWS_ACCESS_KEY_ID", "FERRY_S3_MOTO_ACCESS_KEY_ID"},
        {"AWS_SECRET_ACCESS_KEY", "FERRY_S3_MOTO_SECRET_ACCESS_KEY"},
    };
    const char *which = getenv("FERRY_TEST_S3");
    if (done)
        return;
    done = 1;
    if (!which || !*which || strcmp(which, "s3proxy") == 0)
        return;
    if (strcmp(which, "moto") != 0) {
        fprintf(stderr, "FERRY_TEST_S3=%s: expected s3proxy or moto\n", which);
        exit(1);
    }
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *v = getenv(map[i][1]);
        if (!v || !*v)
            integ_missing_env(map[i][1]);
        setenv(map[i][0], v, 1);
    }
    unsetenv("AWS_SESSION_TOKEN");
}

/* What the selected server is known not to do, so a test asserts the server's actual
 * behaviour (and fails when a new version changes it) instead of skipping. moto 5.2.5:
 * verifies no signature and accepts any credentials (IAM auth is off unless
 * INITIAL_NO_AUTH_ACTION_COUNT is set), and ignores x-amz-copy-source-if-match on
 * CopyObject (it honours If-Match on GET/HEAD and x-amz-copy-source-if-none-match). */
static inline int integ_s3_checks_signatures(void)
{
    const char *which = getenv("FERRY_TEST_S3");
    return !which || strcmp(which, "moto") != 0;
}
static inline int integ_s3_copy_if_match(void)
{
    return integ_s3_checks_signatures(); /* the same one server lacks both today */
}

/* Returns the variable (after integ_select_s3), or ends the test: skipped (77) by hand,
 * failed under CI=true, because CI always has the stack and a skip there would hide a
 * broken setup. */
static inline const char *integ_require_env(const char *name)
{
    const char *v;
    integ_select_s3();
    v = getenv(name);
    if (v && *v)
        return v;
    integ_missing_env(name);
    return NULL;
}

#endif
