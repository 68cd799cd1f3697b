#include "ferry_event.h"

#include <stdlib.h>
#include <string.h>

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void ferry_onboard_clear(ferry_onboard *ev)
{
    if (!ev)
        return;
    free(ev->event_id);
    free(ev->dataset);
    free(ev->source_uri);
    free(ev->target_uri);
    free(ev->requested_by);
    free(ev->catalog_ref);
    free(ev->catalog_etag);
    free_strv(ev->include_prefixes, ev->include_count);
    free_strv(ev->exclude_prefixes, ev->exclude_count);
    free(ev->chunk_parent_event_id);
    free(ev->chunk_start_after);
    free(ev->chunk_end_key);
    free(ev->source_inventory);
    memset(ev, 0, sizeof(*ev));
}

void ferry_migrated_clear(ferry_migrated *ev)
{
    if (!ev)
        return;
    free(ev->event_id);
    free(ev->dataset);
    free(ev->source_uri);
    free(ev->target_uri);
    free(ev->worker);
    memset(ev, 0, sizeof(*ev));
}

static const char *origin_names[] = {"backstage", "registry", "api", "cli", "replay"};
static const char *overwrite_names[] = {"if_different", "always", "never"};

const char *ferry_origin_name(ferry_origin o)
{
    return (unsigned)o < 5 ? origin_names[o] : "unknown";
}

int ferry_origin_parse(const char *s, ferry_origin *out)
{
    for (int i = 0; i < 5; i++)
        if (s && strcmp(s, origin_names[i]) == 0) {
            *out = (ferry_origin)i;
            return 0;
        }
    return -1;
}

const char *ferry_overwrite_name(ferry_overwrite o)
{
    return (unsigned)o < 3 ? overwrite_names[o] : "unknown";
}

int ferry_overwrite_parse(const char *s, ferry_overwrite *out)
{
    for (int i = 0; i < 3; i++)
        if (s && strcmp(s, overwrite_names[i]) == 0) {
            *out = (ferry_overwrite)i;
            return 0;
        }
    return -1;
}
