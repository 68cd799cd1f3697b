/* Fuzz target: a Backstage catalog by-query page (ferry_backstage_parse_page), what the
 * poller reads from the network, then each entity's annotations mapped to a spec
 * (ferry_backstage_entity_spec) and validated.
 * Invariants: on success every kept entity has a ref "kind:namespace/name" whose kind is
 * lower-case, a uid, and only ferry.io/ annotations; count never exceeds the items given;
 * on failure the page is empty; a spec is built only from entities with a source or a
 * target and then carries the entity's ref and etag. */
#include "fuzz.h"

#include <ctype.h>

#include "ferry_backstage.h"
#include "ferry_validate.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ferry_backstage_page page;
    ferry_error err = {0};
    size_t skipped = 0;

    if (ferry_backstage_parse_page((const char *)data, size, &page, &skipped, &err) !=
        FERRY_OK) {
        FUZZ_ASSERT(page.count == 0 && page.items == NULL && page.next_cursor == NULL);
        FUZZ_ASSERT(fuzz_terminated(err.msg, sizeof(err.msg)));
        return 0;
    }
    for (size_t i = 0; i < page.count; i++) {
        const ferry_backstage_entity *e = &page.items[i];
        ferry_onboard ev = {0};
        ferry_rc rc;

        FUZZ_ASSERT(e->ref && e->uid && e->kind && e->name && e->namespace_);
        FUZZ_ASSERT(strchr(e->ref, ':') != NULL);
        for (const char *p = e->ref; *p != ':'; p++)
            FUZZ_ASSERT(!isupper((unsigned char)*p));
        for (size_t k = 0; k < e->n_ann; k++)
            FUZZ_ASSERT(strncmp(e->ann[k].key, "ferry.io/", 9) == 0 && e->ann[k].value);
        rc = ferry_backstage_entity_spec(e, &ev, &err);
        if (rc == FERRY_OK) {
            FUZZ_ASSERT(ev.dataset && ev.source_uri && ev.target_uri && ev.requested_by);
            FUZZ_ASSERT(ev.catalog_ref && strcmp(ev.catalog_ref, e->ref) == 0);
            FUZZ_ASSERT(!e->etag || (ev.catalog_etag && strcmp(ev.catalog_etag, e->etag) == 0));
            ev.event_id = strdup("0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b");
            (void)ferry_onboard_validate(&ev, &err);
        } else if (rc == FERRY_ERR_CANCELLED) {
            FUZZ_ASSERT(!ferry_backstage_annotation(e, "ferry.io/source") &&
                        !ferry_backstage_annotation(e, "ferry.io/target"));
        }
        ferry_onboard_clear(&ev);
    }
    ferry_backstage_page_clear(&page);
    return 0;
}
