/* The writer schemas fuzz_avro.c registers (and gen_avro_seeds.c encodes seeds with), each
 * under a Confluent Schema Registry id. Besides the current schemas they are the shapes a
 * reader must survive: an older writer (fields filled from defaults), a differently shaped
 * one (reordered, promoted, extra and recursive fields), and one using every Avro type, so
 * the pre-decode guard (lib/ferry_avro_guard.c) sees bytes, fixed, float, double, maps,
 * nested arrays and multi-branch unions before avro-c does. A NULL json means "the
 * codec's current schema for that event". */
#ifndef FERRY_FUZZ_AVRO_SCHEMAS_H
#define FERRY_FUZZ_AVRO_SCHEMAS_H

#include "ferry_avro.h"

typedef struct fuzz_avro_writer {
    int32_t id;
    ferry_avro_event kind;
    const char *name; /* seed file prefix */
    const char *json;
} fuzz_avro_writer;

#define FUZZ_ORIGIN_ENUM                                                                       \
    "{\"type\":\"enum\",\"name\":\"Origin\",\"symbols\":"                                      \
    "[\"backstage\",\"registry\",\"api\",\"cli\",\"replay\"]}"

static const fuzz_avro_writer fuzz_avro_writers[] = {
    {1, FERRY_AVRO_EVENT_ONBOARD, "onboard", NULL},
    {2, FERRY_AVRO_EVENT_MIGRATED, "migrated", NULL},
    /* An older DatasetOnboard: no catalog_etag, no options. */
    {3, FERRY_AVRO_EVENT_ONBOARD, "onboard-old",
     "{\"type\":\"record\",\"name\":\"DatasetOnboard\",\"namespace\":\"io.ferry\",\"fields\":["
     "{\"name\":\"event_id\",\"type\":\"string\"},"
     "{\"name\":\"dataset\",\"type\":\"string\"},"
     "{\"name\":\"source_uri\",\"type\":\"string\"},"
     "{\"name\":\"target_uri\",\"type\":\"string\"},"
     "{\"name\":\"requested_at\",\"type\":\"long\"},"
     "{\"name\":\"requested_by\",\"type\":\"string\"},"
     "{\"name\":\"origin\",\"type\":" FUZZ_ORIGIN_ENUM "},"
     "{\"name\":\"catalog_ref\",\"type\":[\"null\",\"string\"],\"default\":null}]}"},
    /* Reordered fields, int promoted to long, other enum symbol order, a partial Options
     * record, a map and a recursive record the reader ignores. */
    {4, FERRY_AVRO_EVENT_ONBOARD, "onboard-odd",
     "{\"type\":\"record\",\"name\":\"DatasetOnboard\",\"namespace\":\"io.ferry\",\"fields\":["
     "{\"name\":\"labels\",\"type\":{\"type\":\"map\",\"values\":\"string\"}},"
     "{\"name\":\"dataset\",\"type\":\"string\"},"
     "{\"name\":\"event_id\",\"type\":\"string\"},"
     "{\"name\":\"options\",\"type\":{\"type\":\"record\",\"name\":\"Options\",\"fields\":["
     "{\"name\":\"priority\",\"type\":\"int\"},"
     "{\"name\":\"include_prefixes\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
     "{\"name\":\"overwrite\",\"type\":{\"type\":\"enum\",\"name\":\"Overwrite\",\"symbols\":"
     "[\"never\",\"always\",\"if_different\"]}},"
     "{\"name\":\"verify\",\"type\":\"boolean\"}]}},"
     "{\"name\":\"source_uri\",\"type\":\"string\"},"
     "{\"name\":\"target_uri\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"requested_at\",\"type\":\"int\"},"
     "{\"name\":\"requested_by\",\"type\":\"string\"},"
     "{\"name\":\"origin\",\"type\":{\"type\":\"enum\",\"name\":\"Origin\",\"symbols\":"
     "[\"cli\",\"api\",\"replay\",\"portal\",\"registry\",\"backstage\"]}},"
     "{\"name\":\"catalog_etag\",\"type\":\"string\"},"
     "{\"name\":\"tree\",\"type\":[\"null\",{\"type\":\"record\",\"name\":\"Node\",\"fields\":["
     "{\"name\":\"name\",\"type\":\"string\"},"
     "{\"name\":\"child\",\"type\":[\"null\",\"Node\"]}]}]}]}"},
    /* Every Avro type in extra fields around the current ones. */
    {5, FERRY_AVRO_EVENT_ONBOARD, "onboard-wide",
     "{\"type\":\"record\",\"name\":\"DatasetOnboard\",\"namespace\":\"io.ferry\",\"fields\":["
     "{\"name\":\"x_bytes\",\"type\":\"bytes\"},"
     "{\"name\":\"event_id\",\"type\":\"string\"},"
     "{\"name\":\"x_fixed\",\"type\":{\"type\":\"fixed\",\"name\":\"Digest\",\"size\":16}},"
     "{\"name\":\"dataset\",\"type\":\"string\"},"
     "{\"name\":\"x_float\",\"type\":\"float\"},"
     "{\"name\":\"x_double\",\"type\":\"double\"},"
     "{\"name\":\"source_uri\",\"type\":\"string\"},"
     "{\"name\":\"target_uri\",\"type\":\"string\"},"
     "{\"name\":\"x_matrix\",\"type\":{\"type\":\"map\",\"values\":"
     "{\"type\":\"array\",\"items\":[\"null\",\"long\",\"Digest\"]}}},"
     "{\"name\":\"requested_at\",\"type\":\"long\"},"
     "{\"name\":\"requested_by\",\"type\":\"string\"},"
     "{\"name\":\"x_any\",\"type\":[\"null\",\"boolean\",\"int\",\"string\",\"bytes\","
     "{\"type\":\"array\",\"items\":\"double\"}]},"
     "{\"name\":\"origin\",\"type\":" FUZZ_ORIGIN_ENUM "},"
     "{\"name\":\"catalog_ref\",\"type\":[\"null\",\"string\"]},"
     "{\"name\":\"catalog_etag\",\"type\":[\"string\",\"null\"]},"
     "{\"name\":\"options\",\"type\":{\"type\":\"record\",\"name\":\"Options\",\"fields\":["
     "{\"name\":\"verify\",\"type\":\"boolean\"},"
     "{\"name\":\"overwrite\",\"type\":{\"type\":\"enum\",\"name\":\"Overwrite\",\"symbols\":"
     "[\"if_different\",\"always\",\"never\"]}},"
     "{\"name\":\"include_prefixes\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
     "{\"name\":\"exclude_prefixes\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
     "{\"name\":\"x_nested\",\"type\":{\"type\":\"array\",\"items\":"
     "{\"type\":\"map\",\"values\":\"float\"}}}]}}]}"},
    /* DatasetMigrated reordered, with int counters (promoted) and an extra field. */
    {6, FERRY_AVRO_EVENT_MIGRATED, "migrated-odd",
     "{\"type\":\"record\",\"name\":\"DatasetMigrated\",\"namespace\":\"io.ferry\",\"fields\":["
     "{\"name\":\"worker\",\"type\":\"string\"},"
     "{\"name\":\"objects\",\"type\":\"int\"},"
     "{\"name\":\"event_id\",\"type\":\"string\"},"
     "{\"name\":\"dataset\",\"type\":\"string\"},"
     "{\"name\":\"x_hosts\",\"type\":{\"type\":\"array\",\"items\":\"string\"}},"
     "{\"name\":\"source_uri\",\"type\":\"string\"},"
     "{\"name\":\"target_uri\",\"type\":\"string\"},"
     "{\"name\":\"bytes\",\"type\":\"long\"},"
     "{\"name\":\"duration_ms\",\"type\":\"int\"},"
     "{\"name\":\"finished_at\",\"type\":\"long\"}]}"},
};

#define FUZZ_AVRO_NWRITERS (sizeof(fuzz_avro_writers) / sizeof(fuzz_avro_writers[0]))

#endif
