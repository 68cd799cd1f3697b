/* Shared by integration tests: endpoints come from `scripts/stack env`. */
#ifndef INTEG_ENV_H
#define INTEG_ENV_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Returns the variable, or ends the test: skipped (77) by hand, failed under CI=true,
 * because CI always has the stack and a skip there would hide a broken setup. */
static inline const char *integ_require_env(const char *name)
{
    const char *v = getenv(name);
    const char *ci = getenv("CI");
    if (v && *v)
        return v;
    if (ci && strcmp(ci, "true") == 0) {
        fprintf(stderr, "%s is not set but CI=true: the stack must be up\n", name);
        exit(1);
    }
    fprintf(stderr, "SKIP: %s not set (run `eval \"$(scripts/stack env)\"`)\n", name);
    exit(77);
}

#endif
