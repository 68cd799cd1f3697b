/* `ferry-producer publish`: one event from the command line, acknowledged by the broker
 * (idempotent producer, acks=all) before we report success. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_event.h"
#include "ferry_kafka.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "ferry_validate.h"
#include "producer.h"

/* serve's table: one config file works for both commands (publish ignores those keys). */
#define publish_defs producer_serve_defs

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "Usage: ferry-producer publish --dataset NAME --source s3://BUCKET/PREFIX\n"
        "                              --target s3://BUCKET/PREFIX [options]\n"
        "\n"
        "Publishes one DatasetOnboard event keyed by the dataset name and waits until\n"
        "the broker acknowledged it; prints topic, partition, offset and event id.\n"
        "\n"
        "  -d, --dataset NAME        dataset name ([a-z0-9][a-z0-9._-]{0,62})\n"
        "  -s, --source URI          where the objects are now\n"
        "  -t, --target URI          where they should go\n"
        "      --requested-by WHO    recorded in the event (default: $USER)\n"
        "      --overwrite POLICY    if_different (default), always or never\n"
        "      --no-verify           skip size/ETag verification at the target\n"
        "      --include PREFIX      only keys under PREFIX (relative to source; repeatable)\n"
        "      --exclude PREFIX      skip keys under PREFIX (repeatable)\n"
        "      --inventory URI       s3://BUCKET/KEY of an S3 Inventory manifest.json of the\n"
        "                            source bucket: lets fan-out split the dataset without\n"
        "                            listing it first\n"
        "      --event-id UUID       use this event id instead of a random one\n"
        "      --json                print the result as one JSON object\n" FERRY_CLI_TIMEOUT_HELP
        "  -c, --config FILE         key=value settings file\n"
        "  -X KEY=VALUE              ferry setting, or librdkafka property\n"
        "      --log-level LEVEL     debug, info, warn, error\n"
        "      --dump-config         print the effective settings (secrets redacted)\n"
        "  -h, --help / -V, --version\n\n");
    ferry_conf_help(NULL, fp);
}

enum {
    OPT_REQUESTED_BY = 1000,
    OPT_OVERWRITE,
    OPT_NO_VERIFY,
    OPT_INCLUDE,
    OPT_EXCLUDE,
    OPT_INVENTORY,
    OPT_EVENT_ID,
    OPT_JSON
};

static int push_str(char ***v, size_t *n, const char *s)
{
    char **nv = realloc(*v, (*n + 1) * sizeof(*nv));
    if (!nv)
        return -1;
    *v = nv;
    if (!(nv[*n] = strdup(s)))
        return -1;
    (*n)++;
    return 0;
}

int producer_publish_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dataset", required_argument, NULL, 'd'},
        {"source", required_argument, NULL, 's'},
        {"target", required_argument, NULL, 't'},
        {"requested-by", required_argument, NULL, OPT_REQUESTED_BY},
        {"overwrite", required_argument, NULL, OPT_OVERWRITE},
        {"no-verify", no_argument, NULL, OPT_NO_VERIFY},
        {"include", required_argument, NULL, OPT_INCLUDE},
        {"exclude", required_argument, NULL, OPT_EXCLUDE},
        {"inventory", required_argument, NULL, OPT_INVENTORY},
        {"event-id", required_argument, NULL, OPT_EVENT_ID},
        {"json", no_argument, NULL, OPT_JSON},
        FERRY_CLI_LONGOPTS,
        FERRY_CLI_TIMEOUT_LONGOPT,
        {NULL, 0, NULL, 0}};
    ferry_cli *cli = ferry_cli_new(publish_defs);
    ferry_onboard ev = {0};
    producer_emitter *em = NULL;
    producer_receipt rcpt;
    const ferry_conf *conf;
    ferry_error err = {0};
    char errstr[512], uuid[40];
    int opt, json = 0, exit_code = FERRY_EXIT_USAGE, timeout_ms;
    int64_t deadline_ms;
    const char *user = getenv("USER");

    if (!cli) {
        fprintf(stderr, "ferry-producer: out of memory\n");
        return FERRY_EXIT_FAILURE;
    }
    ev.verify = 1;
    ev.origin = FERRY_ORIGIN_CLI;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "d:s:t:" FERRY_CLI_SHORTOPTS, longopts, NULL)) !=
           -1) {
        int r = ferry_cli_common_opt(cli, opt, optarg, errstr, sizeof(errstr));
        if (r < 0)
            goto usage_error;
        if (r > 0)
            continue;
        switch (opt) {
        case 'd':
            free(ev.dataset);
            ev.dataset = strdup(optarg);
            break;
        case 's':
            free(ev.source_uri);
            ev.source_uri = strdup(optarg);
            break;
        case 't':
            free(ev.target_uri);
            ev.target_uri = strdup(optarg);
            break;
        case OPT_REQUESTED_BY: user = optarg; break;
        case OPT_OVERWRITE:
            if (ferry_overwrite_parse(optarg, &ev.overwrite) != 0) {
                snprintf(errstr, sizeof(errstr),
                         "--overwrite must be if_different, always or never");
                goto usage_error;
            }
            break;
        case OPT_NO_VERIFY: ev.verify = 0; break;
        case OPT_INCLUDE:
            if (push_str(&ev.include_prefixes, &ev.include_count, optarg))
                goto oom;
            break;
        case OPT_EXCLUDE:
            if (push_str(&ev.exclude_prefixes, &ev.exclude_count, optarg))
                goto oom;
            break;
        case OPT_INVENTORY:
            free(ev.source_inventory);
            ev.source_inventory = strdup(optarg);
            break;
        case OPT_EVENT_ID:
            free(ev.event_id);
            ev.event_id = strdup(optarg);
            break;
        case OPT_JSON: json = 1; break;
        default: snprintf(errstr, sizeof(errstr), "see --help"); goto usage_error;
        }
    }
    if (ferry_cli_info_only(cli, "ferry-producer", usage)) {
        exit_code = FERRY_EXIT_OK;
        goto out;
    }
    if (optind < argc) {
        snprintf(errstr, sizeof(errstr), "unexpected argument \"%s\"", argv[optind]);
        goto usage_error;
    }
    if (!ev.dataset || !ev.source_uri || !ev.target_uri) {
        snprintf(errstr, sizeof(errstr), "--dataset, --source and --target are required");
        goto usage_error;
    }
    if (!(conf = ferry_cli_finish(cli, "ferry-producer", NULL, errstr, sizeof(errstr))))
        goto usage_error;
    if (ferry_cli_wants_dump(cli)) { /* printed by ferry_cli_finish */
        exit_code = FERRY_EXIT_OK;
        goto out;
    }

    if (!ev.event_id) {
        if (ferry_uuid_v4(uuid, sizeof(uuid)) != 0 || !(ev.event_id = strdup(uuid)))
            goto oom;
    }
    ev.requested_by = strdup(user && *user ? user : "unknown");
    ev.requested_at_ms = ferry_now_ms();
    if (!ev.requested_by)
        goto oom;
    if (ferry_onboard_validate(&ev, &err) != FERRY_OK) {
        ferry_error_to_errstr(&err, errstr, sizeof(errstr), NULL);
        goto usage_error;
    }

    exit_code = FERRY_EXIT_FAILURE;
    ferry_kafka_set_one_shot(1); /* connection errors end up in our final line */
    timeout_ms = ferry_cli_timeout_ms(cli);
    deadline_ms = ferry_mono_ms() + timeout_ms;
    if (!(em = producer_emitter_new(conf, 0, errstr, sizeof(errstr)))) {
        fprintf(stderr, "ferry-producer publish: %s\n", errstr);
        goto out;
    }
    producer_emitter_set_deadline(em, deadline_ms);
    /* Metadata first: with no broker reachable, this is the message that says so. */
    if (ferry_kafka_wait_brokers(producer_kafka_of(em), conf, timeout_ms, &err) != FERRY_OK ||
        producer_emit(em, &ev, &rcpt, &err) != FERRY_OK) {
        fprintf(stderr, "ferry-producer publish: event %s NOT published: %s\n", ev.event_id,
                err.msg);
        goto out;
    }
    if (json)
        printf("{\"event_id\":\"%s\",\"dataset\":\"%s\",\"topic\":\"%s\",\"partition\":%d,"
               "\"offset\":%lld}\n",
               ev.event_id, ev.dataset, rcpt.topic, (int)rcpt.partition,
               (long long)rcpt.offset);
    else
        printf("published event %s for dataset %s to %s [partition %d] at offset %lld\n",
               ev.event_id, ev.dataset, rcpt.topic, (int)rcpt.partition,
               (long long)rcpt.offset);
    exit_code = FERRY_EXIT_OK;
    goto out;

oom:
    fprintf(stderr, "ferry-producer: out of memory\n");
    exit_code = FERRY_EXIT_FAILURE;
    goto out;
usage_error:
    fprintf(stderr, "ferry-producer publish: %s\n", errstr);
    exit_code = FERRY_EXIT_USAGE;
out:
    if (producer_emitter_destroy(em) > 0)
        exit_code = FERRY_EXIT_FAILURE;
    ferry_onboard_clear(&ev);
    ferry_cli_destroy(cli);
    return exit_code;
}
