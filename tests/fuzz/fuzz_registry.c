/* Fuzz target: a JSON registry file (ferry_registry_parse) -- written by people and
 * tools, possibly half-written. Invariants: a file is taken whole or not at all (on
 * failure nothing is returned); every spec returned passes ferry_onboard_validate once
 * given an event id, and no dataset appears twice. */
#include "fuzz.h"

#include "ferry_registry.h"
#include "ferry_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_onboard *specs = NULL;
    size_t n = 0;
    ferry_error err = {0};

    if (ferry_registry_parse((const char *)data, size, &specs, &n, &err) != FERRY_OK) {
        FUZZ_ASSERT(specs == NULL && n == 0);
        FUZZ_ASSERT(fuzz_terminated(err.msg, sizeof(err.msg)) && err.msg[0]);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        char id[] = "0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b";
        specs[i].event_id = id;
        FUZZ_ASSERT(ferry_onboard_validate(&specs[i], &err) == FERRY_OK);
        specs[i].event_id = NULL;
        for (size_t j = 0; j < i; j++)
            FUZZ_ASSERT(strcmp(specs[i].dataset, specs[j].dataset) != 0);
    }
    for (size_t i = 0; i < n; i++)
        ferry_onboard_clear(&specs[i]);
    free(specs);
    return 0;
}
