/* Fuzz target: S3 Inventory CSV (ferry_inventory_schema_parse, ferry_inventory_parse_line).
 *
 * Input: the first line is a fileSchema, every further line a CSV row.
 * Invariants: a parsed row's strings are NUL-terminated and within their limits, the key
 * is non-empty and key_len is its length; a failure is PERMANENT invalid-spec. */
#include "fuzz.h"

#include "ferry_inventory.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_cstr(data, size);
    char *nl = strchr(text, '\n');
    ferry_inventory_schema sc;
    ferry_inventory_row row;
    ferry_error err;

    if (nl)
        *nl = '\0';
    if (ferry_inventory_schema_parse(text, &sc, &err) != FERRY_OK) {
        FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT && !strcmp(err.cls, FERRY_EC_INVALID_SPEC));
        free(text);
        return 0;
    }
    FUZZ_ASSERT(sc.nfields > sc.bucket && sc.nfields > sc.key && sc.bucket >= 0 && sc.key >= 0);
    for (char *line = nl ? nl + 1 : NULL; line;) {
        char *next = strchr(line, '\n');
        size_t len = next ? (size_t)(next - line) : strlen(line);
        if (ferry_inventory_parse_line(&sc, line, len, &row, &err) == FERRY_OK) {
            FUZZ_ASSERT(fuzz_terminated(row.bucket, sizeof(row.bucket)) && row.bucket[0]);
            FUZZ_ASSERT(fuzz_terminated(row.key, sizeof(row.key)));
            FUZZ_ASSERT(row.key_len > 0 && strlen(row.key) == row.key_len);
            FUZZ_ASSERT(fuzz_terminated(row.etag, sizeof(row.etag)));
        } else {
            FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT &&
                        !strcmp(err.cls, FERRY_EC_INVALID_SPEC));
        }
        line = next ? next + 1 : NULL;
    }
    free(text);
    return 0;
}
