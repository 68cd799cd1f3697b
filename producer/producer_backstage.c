/* The Backstage catalog source of `serve`: poll by-query, build a spec per dataset entity
 * from ferry's annotations, and hand the complete listing to producer_sync_round. A poll
 * that fails anywhere -- any page -- is dropped whole and retried with backoff: a partial
 * listing never looks like removed entities. */
#include <stdlib.h>
#include <string.h>

#include "ferry_backstage.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "producer.h"

#define BACKOFF_BASE_MS 1000

/* Bearer token: backstage.token (FERRY_BACKSTAGE_TOKEN) or backstage.token_file. */
static char *read_token(const ferry_conf *conf, char *errstr, size_t errstr_size)
{
    const char *tok = ferry_conf_str(conf, "backstage.token");
    const char *file = ferry_conf_str(conf, "backstage.token_file");

    if (file && *file)
        return ferry_read_small_file(file, 4096, errstr, errstr_size);
    if (tok && *tok)
        return strdup(tok);
    return strdup("");
}

typedef struct poller {
    producer_ctx *ctx;
    ferry_backstage *bs;
    producer_source src;
    int64_t interval_ms, backoff_max_ms;
    int failures; /* consecutive failed polls */
    int64_t failing_since;
} poller;

/* One poll. Returns FERRY_OK if the whole catalog was listed and synced. */
static ferry_rc poll_once(poller *p, ferry_error *err)
{
    ferry_backstage_entity *ents = NULL;
    producer_item *items = NULL;
    ferry_onboard *specs = NULL;
    char **why = NULL;
    size_t n = 0, k = 0;
    unsigned pages = 0;
    int64_t t0 = ferry_mono_ms();
    producer_sync_stats st;
    producer_metrics *m = producer_metrics_of(p->ctx->em);
    ferry_rc rc;

    PRODUCER_COUNT(m->catalog_polls, 1);
    if ((rc = ferry_backstage_list(p->bs, &ents, &n, &pages, err)) != FERRY_OK) {
        PRODUCER_COUNT(m->catalog_poll_failures, 1);
        return rc;
    }
    if (n && (!(items = calloc(n, sizeof(*items))) || !(specs = calloc(n, sizeof(*specs))) ||
              !(why = calloc(n, sizeof(*why))))) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        ferry_error e = {0};
        ferry_rc r = ferry_backstage_entity_spec(&ents[i], &specs[k], &e);
        if (r == FERRY_ERR_CANCELLED) { /* not ferry's */
            ferry_onboard_clear(&specs[k]);
            continue;
        }
        if (r == FERRY_ERR_RETRYABLE) {
            rc = ferry_error_set(err, r, e.cls, "%s", e.msg);
            goto out;
        }
        if (r != FERRY_OK) {
            /* Unusable annotations: reported by sync once per reason; the ref stays "seen". */
            ferry_onboard_clear(&specs[k]);
            if (!(why[k] = strdup(e.msg))) {
                rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                     "out of memory");
                goto out;
            }
            items[k].invalid = why[k];
        }
        items[k].ref = ents[i].ref;
        items[k].uid = ents[i].uid;
        items[k].etag = ents[i].etag;
        items[k].spec = &specs[k];
        k++;
    }
    rc = producer_sync_round(&p->src, items, k, 1, &st, err);
    ferry_debug(NULL,
                "backstage: polled %zu entities (%zu ferry datasets) in %u page(s), %lld ms: "
                "%u published, %u unchanged, %u invalid, %u removed",
                n, k, pages, (long long)(ferry_mono_ms() - t0), st.published, st.unchanged,
                st.invalid, st.removed);
out:
    for (size_t i = 0; i < n; i++) {
        ferry_backstage_entity_clear(&ents[i]);
        if (specs)
            ferry_onboard_clear(&specs[i]);
        if (why)
            free(why[i]);
    }
    free(why);
    free(ents);
    free(specs);
    free(items);
    return rc;
}

void *producer_backstage_thread(void *arg)
{
    producer_ctx *ctx = arg;
    const ferry_conf *conf = ctx->conf;
    ferry_backstage_conf bc = {0};
    poller p = {0};
    char errstr[512];
    char *token = NULL;

    p.ctx = ctx;
    p.interval_ms = ferry_conf_int(conf, "backstage.poll_interval_ms");
    p.backoff_max_ms = ferry_conf_int(conf, "backstage.backoff_max_ms");
    if (!(token = read_token(conf, errstr, sizeof(errstr)))) {
        ferry_err(NULL, "backstage: token: %s; the catalog source is NOT running", errstr);
        return NULL;
    }
    bc.base_url = ferry_conf_str(conf, "backstage.url");
    bc.token = token;
    bc.filter = ferry_conf_str(conf, "backstage.filter");
    bc.page_size = (int)ferry_conf_int(conf, "backstage.page_size");
    bc.timeout_ms = (long)ferry_conf_int(conf, "backstage.timeout_ms");
    bc.ca_file = ferry_conf_str(conf, "backstage.ca_file");
    p.bs = ferry_backstage_new(&bc, errstr, sizeof(errstr));
    explicit_bzero(token, strlen(token));
    free(token);
    if (!p.bs) {
        ferry_err(NULL, "backstage: %s; the catalog source is NOT running", errstr);
        return NULL;
    }
    if (!(p.src.changes = ferry_changes_new("backstage", errstr, sizeof(errstr)))) {
        ferry_err(NULL, "backstage: %s", errstr);
        ferry_backstage_destroy(p.bs);
        return NULL;
    }
    p.src.name = "backstage";
    p.src.origin = FERRY_ORIGIN_BACKSTAGE;
    p.src.em = ctx->em;
    ferry_info(NULL, "backstage: polling %s every %lld ms (filter %s)", bc.base_url,
               (long long)p.interval_ms,
               bc.filter ? bc.filter : FERRY_BACKSTAGE_DEFAULT_FILTER);

    for (;;) {
        ferry_error err = {0};
        int64_t delay = p.interval_ms;

        if (poll_once(&p, &err) == FERRY_OK) {
            if (p.failures)
                ferry_info(NULL,
                           "backstage: catalog polled again after %d failed attempt(s) "
                           "over %lld ms",
                           p.failures, (long long)(ferry_mono_ms() - p.failing_since));
            p.failures = 0;
        } else {
            /* Catalog, Kafka or Redis unavailable: back off (exponential, jittered, capped)
             * and try the whole listing again. Nothing was treated as removed. */
            int64_t ceiling;
            if (!p.failures++)
                p.failing_since = ferry_mono_ms();
            ceiling = BACKOFF_BASE_MS;
            for (int i = 1; i < p.failures && ceiling < p.backoff_max_ms; i++)
                ceiling *= 2;
            if (ceiling > p.backoff_max_ms)
                ceiling = p.backoff_max_ms;
            delay = ceiling / 2 + ferry_backoff_ms(0, ceiling / 2, ceiling / 2);
            ferry_warn(NULL, "backstage: poll failed (%s, attempt %d): %s; retrying in %lld ms",
                       err.cls, p.failures, err.msg, (long long)delay);
        }
        if (producer_stop_wait(ctx->stop, delay))
            break;
    }
    ferry_changes_destroy(p.src.changes);
    ferry_backstage_destroy(p.bs);
    return NULL;
}
