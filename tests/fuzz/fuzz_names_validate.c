/* Fuzz target: dataset names (ferry_dataset_name_valid) and the whole-event check the
 * worker runs on every decoded DatasetOnboard (ferry_onboard_validate), on field values
 * an attacker with produce rights chooses freely.
 *
 * Input: byte 0 picks origin, overwrite (out-of-range values included) and verify; bytes
 * 1 and 2 are chunk_index and chunk_count (signed; 127 and -128 stand for values just
 * past the bounds); the rest is NUL-separated fields: event_id, dataset, source_uri,
 * target_uri, requested_by, chunk_parent_event_id, chunk_start_after, chunk_end_key
 * (an empty chunk field is NULL), then include and exclude prefixes alternately. A
 * missing field is NULL.
 * Invariants: ferry_dataset_name_valid agrees with the documented regular expression
 * ^[a-z0-9][a-z0-9._-]{0,62}$ (reimplemented here) and always explains a refusal in a
 * NUL-terminated sentence, whatever the buffer size; an event that validates has a UUID,
 * a valid name, parseable locations, valid prefixes and consistent chunk fields. */
#include "fuzz.h"

#include "ferry_names.h"
#include "ferry_validate.h"

#define MAX_FIELDS 64

static int name_matches(const char *s)
{
    size_t n = strlen(s);

    if (n < 1 || n > 63)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return 0;
    }
    return 1;
}

static void check_name(const char *name)
{
    static const size_t sizes[] = {1, 2, 16, 200};
    char why[200];
    int ok = ferry_dataset_name_valid(name, NULL, 0);

    FUZZ_ASSERT(ok == name_matches(name));
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        memset(why, 'x', sizeof(why));
        FUZZ_ASSERT(ferry_dataset_name_valid(name, why, sizes[i]) == ok);
        if (!ok)
            FUZZ_ASSERT(fuzz_terminated(why, sizes[i]));
    }
}

static int64_t chunk_num(uint8_t b)
{
    int8_t v = (int8_t)b;
    return v == 127 ? 1000001 : v == -128 ? INT64_MIN : v;
}

static char *opt(char *s) { return s && *s ? s : NULL; }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *fields[MAX_FIELDS] = {0};
    char *inc[MAX_FIELDS], *exc[MAX_FIELDS];
    size_t nf = 0, i;
    ferry_onboard ev;
    ferry_error err;
    ferry_uri src, dst;

    if (size < 3)
        return 0;
    /* split data[3..size) at NULs */
    for (size_t off = 3; off < size && nf < MAX_FIELDS;) {
        const uint8_t *nul = memchr(data + off, 0, size - off);
        size_t len = nul ? (size_t)(nul - (data + off)) : size - off;
        fields[nf] = malloc(len + 1);
        FUZZ_ASSERT(fields[nf]);
        memcpy(fields[nf], data + off, len);
        fields[nf][len] = '\0';
        nf++;
        off += len + 1;
    }

    for (i = 0; i < nf && i < 2; i++)
        check_name(fields[i]);

    memset(&ev, 0, sizeof(ev));
    ev.origin = (ferry_origin)(data[0] & 7);
    ev.overwrite = (ferry_overwrite)((data[0] >> 3) & 3);
    ev.verify = data[0] >> 7;
    ev.chunk_index = chunk_num(data[1]);
    ev.chunk_count = chunk_num(data[2]);
    ev.event_id = nf > 0 ? fields[0] : NULL;
    ev.dataset = nf > 1 ? fields[1] : NULL;
    ev.source_uri = nf > 2 ? fields[2] : NULL;
    ev.target_uri = nf > 3 ? fields[3] : NULL;
    ev.requested_by = nf > 4 ? fields[4] : NULL;
    ev.chunk_parent_event_id = nf > 5 ? opt(fields[5]) : NULL;
    ev.chunk_start_after = nf > 6 ? opt(fields[6]) : NULL;
    ev.chunk_end_key = nf > 7 ? opt(fields[7]) : NULL;
    for (i = 8; i < nf; i++) {
        if ((i - 8) % 2 == 0)
            inc[ev.include_count++] = fields[i];
        else
            exc[ev.exclude_count++] = fields[i];
    }
    ev.include_prefixes = ev.include_count ? inc : NULL;
    ev.exclude_prefixes = ev.exclude_count ? exc : NULL;

    if (ferry_onboard_validate(&ev, &err) == FERRY_OK) {
        FUZZ_ASSERT(ferry_uuid_valid(ev.event_id));
        FUZZ_ASSERT(name_matches(ev.dataset));
        FUZZ_ASSERT(ferry_onboard_parse_uris(&ev, &src, &dst, &err) == FERRY_OK);
        for (i = 0; i < ev.include_count; i++)
            FUZZ_ASSERT(ferry_uri_prefix_valid(ev.include_prefixes[i], NULL, 0));
        for (i = 0; i < ev.exclude_count; i++)
            FUZZ_ASSERT(ferry_uri_prefix_valid(ev.exclude_prefixes[i], NULL, 0));
        FUZZ_ASSERT((unsigned)ev.origin <= FERRY_ORIGIN_REPLAY);
        FUZZ_ASSERT((unsigned)ev.overwrite <= FERRY_OVERWRITE_NEVER);
        if (ev.chunk_count > 0) {
            FUZZ_ASSERT(ev.chunk_index >= 0 && ev.chunk_index < ev.chunk_count);
            FUZZ_ASSERT(ferry_uuid_valid(ev.chunk_parent_event_id));
        } else if (ev.chunk_count == FERRY_CHUNK_COUNT_OPEN) {
            /* published while the dataset was still listed: always has an end key */
            FUZZ_ASSERT(ev.chunk_index >= 0 && ev.chunk_end_key);
            FUZZ_ASSERT(ferry_uuid_valid(ev.chunk_parent_event_id));
        } else {
            FUZZ_ASSERT(ev.chunk_count == 0 && ev.chunk_index == 0);
            FUZZ_ASSERT(!ev.chunk_parent_event_id);
        }
    } else {
        FUZZ_ASSERT(err.rc == FERRY_ERR_PERMANENT && err.msg[0]);
        FUZZ_ASSERT(strcmp(err.cls, FERRY_EC_INVALID_SPEC) == 0);
    }

    for (i = 0; i < nf; i++)
        free(fields[i]);
    return 0;
}
