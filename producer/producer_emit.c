/* The one way ferry-producer publishes a DatasetOnboard event, whatever its source:
 * complete, validate, encode, produce, wait for the broker's acknowledgement. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_avro.h"
#include "ferry_connect.h"
#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "producer.h"

struct producer_emitter {
    rd_kafka_t *rk;
    char *topic;
    pthread_mutex_t codec_lock; /* a codec is one-thread-at-a-time */
    ferry_avro_codec *codec;
    pthread_mutex_t redis_lock; /* so is a ferry_redis handle */
    ferry_redis *redis;
    producer_metrics metrics;
    int64_t deadline_ms; /* one-shot: give up delivering at this ferry_mono_ms(); 0 = none */
};

producer_emitter *producer_emitter_new(const ferry_conf *conf, int with_redis, char *errstr,
                                       size_t errstr_size)
{
    producer_emitter *em = calloc(1, sizeof(*em));

    if (!em) {
        snprintf(errstr, errstr_size, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&em->codec_lock, NULL);
    pthread_mutex_init(&em->redis_lock, NULL);
    if (!(em->topic = strdup(ferry_conf_str(conf, "topic.onboard")))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (!(em->codec = ferry_avro_codec_new(errstr, errstr_size)))
        goto fail;
    if (with_redis && !(em->redis = ferry_connect_redis(conf, errstr, errstr_size)))
        goto fail;
    if (!(em->rk = ferry_kafka_producer_new(conf, errstr, errstr_size)))
        goto fail;
    return em;
fail:
    producer_emitter_destroy(em);
    return NULL;
}

int producer_emitter_destroy(producer_emitter *em)
{
    int left = 0;

    if (!em)
        return 0;
    if (em->rk)
        left = ferry_kafka_producer_destroy(em->rk, 10000);
    ferry_redis_destroy(em->redis);
    ferry_avro_codec_destroy(em->codec);
    pthread_mutex_destroy(&em->codec_lock);
    pthread_mutex_destroy(&em->redis_lock);
    free(em->topic);
    free(em);
    return left;
}

ferry_redis *producer_redis_lock(producer_emitter *em)
{
    if (!em->redis)
        return NULL;
    pthread_mutex_lock(&em->redis_lock);
    return em->redis;
}

void producer_redis_unlock(producer_emitter *em)
{
    if (em->redis)
        pthread_mutex_unlock(&em->redis_lock);
}

void producer_emitter_set_deadline(producer_emitter *em, int64_t deadline_ms)
{
    em->deadline_ms = deadline_ms;
}

const char *producer_topic(const producer_emitter *em) { return em->topic; }
producer_metrics *producer_metrics_of(producer_emitter *em) { return &em->metrics; }
rd_kafka_t *producer_kafka_of(producer_emitter *em) { return em->rk; }

ferry_rc producer_emit(producer_emitter *em, ferry_onboard *ev, producer_receipt *out,
                       ferry_error *err)
{
    char uuid[40];
    void *buf = NULL;
    size_t len = 0;
    ferry_rc rc;
    ferry_log_ctx lc;

    memset(out, 0, sizeof(*out));
    out->topic = em->topic;
    if (!ev->event_id) {
        if (ferry_uuid_v4(uuid, sizeof(uuid)) != 0 || !(ev->event_id = strdup(uuid)))
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "no event id (out of memory or randomness)");
    }
    if (!ev->requested_at_ms)
        ev->requested_at_ms = ferry_now_ms();
    if (!ev->requested_by && !(ev->requested_by = strdup("unknown")))
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    if ((rc = ferry_onboard_validate(ev, err)) != FERRY_OK) {
        PRODUCER_COUNT(em->metrics.invalid_specs, 1);
        return rc;
    }
    pthread_mutex_lock(&em->codec_lock);
    rc = ferry_avro_encode_onboard(em->codec, ev, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len, err);
    pthread_mutex_unlock(&em->codec_lock);
    if (rc != FERRY_OK) {
        ferry_error_prefix(err, "encoding the event");
        return rc;
    }
    rc = ferry_kafka_produce_sync_until(em->rk, em->topic, ev->dataset, strlen(ev->dataset),
                                        buf, len, NULL, em->deadline_ms, &out->partition,
                                        &out->offset, err);
    free(buf);
    lc.dataset = ev->dataset;
    lc.event_id = ev->event_id;
    if (rc != FERRY_OK) {
        PRODUCER_COUNT(em->metrics.publish_failures, 1);
        if (!em->deadline_ms) /* a one-shot command's final line says it */
            ferry_warn(&lc, "event NOT published to %s: %s", em->topic, err->msg);
        return rc;
    }
    snprintf(out->event_id, sizeof(out->event_id), "%s", ev->event_id);
    if ((unsigned)ev->origin < 5)
        PRODUCER_COUNT(em->metrics.published[ev->origin], 1);
    ferry_info(&lc, "published (%s) to %s [%d] at offset %lld%s%s",
               ferry_origin_name(ev->origin), em->topic, (int)out->partition,
               (long long)out->offset, ev->catalog_ref ? " for " : "",
               ev->catalog_ref ? ev->catalog_ref : "");
    return FERRY_OK;
}
