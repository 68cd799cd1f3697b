/* Test tools: the Kafka security settings of the secured stack (FERRY_KAFKA_* environment,
 * the same names ferry's programs read; see scripts/stack env). */
#ifndef FERRY_TOOL_KAFKA_H
#define FERRY_TOOL_KAFKA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

#include "ferry_util.h"

/* 0 on success; on failure errstr says which setting. */
static inline int tool_kafka_security(rd_kafka_conf_t *conf, char *errstr, size_t errstr_size)
{
    static const char *const map[][2] = {
        {"FERRY_KAFKA_SECURITY_PROTOCOL", "security.protocol"},
        {"FERRY_KAFKA_SASL_MECHANISM", "sasl.mechanism"},
        {"FERRY_KAFKA_SASL_USERNAME", "sasl.username"},
        {"FERRY_KAFKA_SSL_CA_LOCATION", "ssl.ca.location"},
    };
    const char *pwfile = getenv("FERRY_KAFKA_SASL_PASSWORD_FILE");
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        const char *v = getenv(map[i][0]);
        if (v && *v && rd_kafka_conf_set(conf, map[i][1], v, errstr, errstr_size))
            return -1;
    }
    if (pwfile && *pwfile) {
        char *pw = ferry_read_small_file(pwfile, 1024, errstr, errstr_size);
        int rc;
        if (!pw)
            return -1;
        rc = rd_kafka_conf_set(conf, "sasl.password", pw, errstr, errstr_size) ? -1 : 0;
        free(pw);
        return rc;
    }
    return 0;
}

#endif
