/* Fuzz target: an S3 Inventory's files as a worker reads them from the store
 * (ferry_inventory_manifest_parse, ferry_inventory_lines, ferry_inventory_sample_*).
 *
 * Input: the first byte picks the reader: 'M' the rest is a manifest.json; 'G' gzip data
 * and 'P' plain text of a data file, whose lines are sampled and cut into bounds.
 * Invariants: a parsed manifest has a source bucket and its files; a line has no '\n' and
 * is at most FERRY_INVENTORY_LINE_MAX bytes; bounds strictly increase; a failure is
 * PERMANENT invalid-spec. */
#include "fuzz.h"

#include "ferry_inventory.h"

static ferry_rc on_line(const char *line, size_t len, void *opaque, ferry_error *err)
{
    (void)err;
    FUZZ_ASSERT(len > 0 && len <= FERRY_INVENTORY_LINE_MAX && !memchr(line, '\n', len));
    return ferry_inventory_sample_add(opaque, line, len) == 0 ? FERRY_OK : FERRY_ERR_RETRYABLE;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_error err;

    if (size < 1)
        return 0;
    if (data[0] == 'M') {
        ferry_inventory_manifest m;
        if (ferry_inventory_manifest_parse((const char *)data + 1, size - 1, &m, &err) ==
            FERRY_OK) {
            FUZZ_ASSERT(m.source_bucket[0] && m.nfiles > 0);
            for (size_t i = 0; i < m.nfiles; i++)
                FUZZ_ASSERT(m.files[i] && m.files[i][0]);
        } else {
            FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT &&
                        !strcmp(err.cls, FERRY_EC_INVALID_SPEC));
        }
        ferry_inventory_manifest_clear(&m);
    } else if (data[0] == 'G' || data[0] == 'P') {
        ferry_inventory_sample s;
        ferry_inventory_sample_init(&s, 16); /* small: sampling replaces keys early */
        if (ferry_inventory_lines((const char *)data + 1, size - 1, data[0] == 'G', on_line, &s,
                                  &err) != FERRY_OK)
            FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT &&
                        !strcmp(err.cls, FERRY_EC_INVALID_SPEC));
        ferry_inventory_sample_bounds(&s, 3);
        FUZZ_ASSERT(s.n <= 16);
        for (size_t i = 1; i < s.n; i++)
            FUZZ_ASSERT(strcmp(s.keys[i - 1], s.keys[i]) < 0);
        ferry_inventory_sample_clear(&s);
    }
    return 0;
}
