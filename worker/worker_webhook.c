/* Optional webhook: after a migration is done (and DatasetMigrated is on Kafka), POST a
 * small JSON document to notify.webhook_url, retrying with backoff. It never undoes a
 * migration: the outcome is logged and kept in the state's `webhook` field. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "ferry_util.h"
#include "worker.h"

static size_t discard(char *p, size_t size, size_t n, void *opaque)
{
    (void)p;
    (void)opaque;
    return size * n;
}

static ferry_rc post_once(const char *url, const char *token, const char *ca_file,
                          const char *body, long timeout_ms, ferry_error *err)
{
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    char auth[600], curlerr[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode cc;
    ferry_rc rc;

    if (!h)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "curl_easy_init");
    hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        hdrs = curl_slist_append(hdrs, auth);
        explicit_bzero(auth, sizeof(auth));
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if (ca_file) /* a private CA; verification stays on */
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curlerr);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK)
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "webhook: %s",
                             curlerr[0] ? curlerr : curl_easy_strerror(cc));
    else if (status >= 200 && status < 300)
        rc = FERRY_OK;
    else
        rc = ferry_error_set(err,
                             status >= 500 || status == 429 ? FERRY_ERR_RETRYABLE
                                                            : FERRY_ERR_PERMANENT,
                             FERRY_EC_INTERNAL, "webhook answered HTTP %ld", status);
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(h);
    return rc;
}

ferry_rc worker_webhook_post(worker *w, const ferry_migrated *m, ferry_error *err)
{
    const char *url = ferry_conf_str(w->conf, "notify.webhook_url");
    const char *token_file = ferry_conf_str(w->conf, "notify.webhook_token_file");
    int attempts = (int)ferry_conf_int(w->conf, "notify.webhook_attempts");
    ferry_log_ctx lctx = {m->dataset, m->event_id};
    char *token = NULL, *body = NULL, errstr[256];
    json_t *doc;
    ferry_rc rc = FERRY_OK;

    if (!url)
        return FERRY_OK;
    if (token_file && !(token = ferry_read_small_file(token_file, 512, errstr, sizeof(errstr))))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG, "webhook token: %s",
                               errstr);
    doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:s}", "type",
                    "dataset_migrated", "dataset", m->dataset, "event_id", m->event_id,
                    "source", m->source_uri, "target", m->target_uri, "objects",
                    (json_int_t)m->objects, "bytes", (json_int_t)m->bytes, "duration_ms",
                    (json_int_t)m->duration_ms, "finished_at_ms", (json_int_t)m->finished_at_ms,
                    "worker", m->worker);
    body = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!body) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    for (int i = 0; i < attempts; i++) {
        rc = post_once(url, token, ferry_conf_str(w->conf, "notify.webhook_ca_file"), body,
                       10000, err);
        if (rc != FERRY_ERR_RETRYABLE)
            break;
        ferry_warn(&lctx, "webhook attempt %d/%d failed: %s", i + 1, attempts, err->msg);
        if (i + 1 < attempts)
            ferry_sleep_ms(ferry_backoff_ms(i, 500, 10000));
    }
out:
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    free(body);
    return rc;
}
