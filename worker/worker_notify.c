/* Notification that a dataset is migrated: DatasetMigrated on its topic, keyed by the
 * dataset name, acknowledged before the event's offset is stored. */
#include <stdlib.h>
#include <string.h>

#include "ferry_kafka.h"
#include "ferry_log.h"
#include "worker.h"

ferry_rc worker_notify_migrated(worker *w, ferry_avro_codec *codec, const ferry_migrated *m,
                                ferry_error *err)
{
    void *buf = NULL;
    size_t len = 0;
    ferry_rc rc = ferry_avro_encode_migrated(codec, m, FERRY_AVRO_SINGLE_OBJECT, 0, &buf, &len,
                                             err);
    if (rc != FERRY_OK)
        return rc;
    rc = ferry_kafka_produce_sync(w->producer, ferry_conf_str(w->conf, "topic.migrated"),
                                  m->dataset, strlen(m->dataset), buf, len, NULL, NULL, NULL,
                                  err);
    free(buf);
    return rc;
}
