/* A catalog snapshot in, exactly the changed entities out as events. Shared by the
 * Backstage poller and the JSON registry; the protocol is ferry_changes.h's:
 * check (hash differs from the last PUBLISHED one?) -> publish and wait for the ack ->
 * only then record the new hash. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_changes.h"
#include "ferry_log.h"
#include "ferry_validate.h"
#include "producer.h"

typedef struct removed_ctx {
    const char *source;
    unsigned n;
} removed_ctx;

static void on_removed(const char *ref, void *opaque)
{
    removed_ctx *rc = opaque;
    rc->n++;
    /* ferry never deletes data: a dataset leaving the catalog starts no migration. */
    ferry_info(NULL, "%s: %s left the catalog (or lost its ferry annotations); no event",
               rc->source, ref);
}

static int cmp_dataset(const void *a, const void *b)
{
    const producer_item *x = *(producer_item *const *)a, *y = *(producer_item *const *)b;
    int c = strcmp(x->spec->dataset ? x->spec->dataset : "",
                   y->spec->dataset ? y->spec->dataset : "");
    return c ? c : strcmp(x->ref, y->ref);
}

/* Validates the spec as it will be published (the event id is not known yet). */
static ferry_rc validate_spec(ferry_onboard *spec, ferry_error *err)
{
    char nil_id[] = "00000000-0000-0000-0000-000000000000";
    ferry_rc rc;

    spec->event_id = nil_id;
    rc = ferry_onboard_validate(spec, err);
    spec->event_id = NULL;
    return rc;
}

/* One item. FERRY_OK unless Kafka or Redis failed (then the round stops). */
static ferry_rc sync_one(producer_source *src, producer_item *it, int duplicate,
                         producer_sync_stats *st, ferry_error *err)
{
    char hash[FERRY_CHANGES_HASH_LEN + 1];
    ferry_change ch;
    ferry_redis *r;
    ferry_rc rc;
    ferry_log_ctx lc = {it->spec->dataset, NULL};
    producer_receipt rcpt;
    ferry_error verr = {0};

    it->spec->origin = src->origin;
    if (it->invalid) {
        ferry_onboard why = {0};
        why.dataset = (char *)it->invalid; /* hash the reason: a new reason, a new warning */
        ferry_changes_spec_hash(&why, hash);
        snprintf(verr.msg, sizeof(verr.msg), "%s", it->invalid);
    } else {
        ferry_changes_spec_hash(it->spec, hash);
    }
    if (it->invalid || duplicate || validate_spec(it->spec, &verr) != FERRY_OK) {
        st->invalid++;
        if (ferry_changes_note_invalid(src->changes, it->ref, hash)) { /* once per version */
            PRODUCER_COUNT(producer_metrics_of(src->em)->invalid_specs, 1);
            ferry_warn(&lc, "%s: %s not published: %s", src->name, it->ref,
                       duplicate ? "another entity defines the same dataset" : verr.msg);
        }
        return FERRY_OK;
    }

    r = producer_redis_lock(src->em);
    rc = ferry_changes_check(src->changes, r, it->ref, hash, &ch, err);
    producer_redis_unlock(src->em);
    if (rc != FERRY_OK) {
        ferry_error_prefix(err, "change state of %s", it->ref);
        return rc == FERRY_ERR_PERMANENT ? FERRY_OK : rc; /* a bad ref skips one item */
    }
    if (!ch.publish) {
        st->unchanged++;
        return FERRY_OK;
    }

    if (!(it->spec->event_id = strdup(ch.event_id)) ||
        (!it->spec->catalog_ref && !(it->spec->catalog_ref = strdup(it->ref))) ||
        (!it->spec->catalog_etag && !(it->spec->catalog_etag = strdup(hash))))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    lc.event_id = it->spec->event_id;
    if ((rc = producer_emit(src->em, it->spec, &rcpt, err)) != FERRY_OK) {
        if (rc != FERRY_ERR_PERMANENT)
            return rc; /* Kafka: the round stops, the next one retries */
        if (ferry_changes_note_invalid(src->changes, it->ref, hash))
            ferry_warn(&lc, "%s: %s not published: %s", src->name, it->ref, err->msg);
        return FERRY_OK;
    }
    st->published++;
    ferry_info(&lc, "%s: %s %s (spec %s -> %s, generation %lld)", src->name, it->ref,
               ch.prev_hash[0] ? "changed" : "is new", ch.prev_hash[0] ? ch.prev_hash : "none",
               hash, (long long)ch.gen);

    r = producer_redis_lock(src->em);
    rc = ferry_changes_record(src->changes, r, it->ref, &ch, it->spec->dataset, it->uid,
                              it->etag, err);
    producer_redis_unlock(src->em);
    if (rc != FERRY_OK)
        /* Published but not recorded: kept in memory and retried; after a crash the same
         * event id is published again, which the worker absorbs. */
        ferry_warn(&lc, "%s: published %s but could not record it yet: %s", src->name, it->ref,
                   err->msg);
    return FERRY_OK;
}

ferry_rc producer_sync_round(producer_source *src, producer_item *items, size_t n, int complete,
                             producer_sync_stats *st, ferry_error *err)
{
    producer_item **order = NULL;
    removed_ctx rm = {src->name, 0};
    ferry_rc rc = FERRY_OK;

    memset(st, 0, sizeof(*st));
    st->items = (unsigned)n;
    if (n && !(order = malloc(n * sizeof(*order))))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++)
        order[i] = &items[i];
    /* Sorted by dataset, so two entities claiming one dataset are next to each other: the
     * first (by ref) wins, the others are reported, and the two never take turns. */
    if (n)
        qsort(order, n, sizeof(*order), cmp_dataset);

    ferry_changes_begin_round(src->changes);
    for (size_t i = 0; i < n; i++) {
        int dup = i > 0 && order[i]->spec->dataset && order[i - 1]->spec->dataset &&
                  strcmp(order[i]->spec->dataset, order[i - 1]->spec->dataset) == 0;
        if ((rc = sync_one(src, order[i], dup, st, err)) != FERRY_OK)
            goto out; /* Kafka or Redis down: stop; the next round retries the rest */
    }
    if (complete) {
        ferry_changes_end_round(src->changes, on_removed, &rm);
        st->removed = rm.n;
    }
out:
    free(order);
    return rc;
}
