/* tests/fuzz: shared by every fuzz target and by replay_main.c.
 *
 * A target is one file fuzz_<name>.c defining LLVMFuzzerTestOneInput(). It is built twice:
 * with libFuzzer when FERRY_FUZZ=ON (tests/fuzz/run drives it), and always as
 * fuzz_<name>_replay, a plain program that feeds it every file of corpus/<name>/ and
 * regressions/<name>/ (ctest fuzz_regress.<name>, label unit). A target must be
 * deterministic, must not leak, and reports a broken invariant with FUZZ_ASSERT (which
 * aborts, so both libFuzzer and the replay test see a crash). */
#ifndef FERRY_FUZZ_H
#define FERRY_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_ASSERT(cond)                                                                      \
    do {                                                                                       \
        if (!(cond)) {                                                                         \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond);  \
            abort();                                                                           \
        }                                                                                      \
    } while (0)

/* The input as a malloc'd NUL-terminated string (the parsers under test take C strings);
 * an embedded NUL simply ends it early. Aborts on out of memory. Caller frees. */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    if (size)
        memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

/* Whether a fixed-size char array holds a NUL (every string field we read back must). */
static inline int fuzz_terminated(const char *buf, size_t size)
{
    return memchr(buf, '\0', size) != NULL;
}

#endif
