/* ferry-dlq-replayer: list, inspect and replay dead-lettered onboarding events. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_connect.h"
#include "ferry_kafka.h"
#include "ferry_log.h"
#include "replayer.h"

static const ferry_conf_def replayer_defs[] = {
    {"replay.max_count", FERRY_CONF_INT, "3", 0, 1000000, 0,
     "Records whose ferry-replay-count is at least this are refused unless --force "
     "(the loop guard)"},
    {"replay.allowed_topics", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Comma-separated topics replay may produce to; unset = topic.onboard only"},
    {"replay.ledger_ttl_days", FERRY_CONF_INT, "90", 0, 36500, 0,
     "Keep ledger entries (what was replayed) this long; 0 = forever. Keep it longer "
     "than the DLQ topic's retention"},
    {NULL, 0, NULL, 0, 0, 0, NULL}};

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "Usage: ferry-dlq-replayer list    [filters] [--ready] [--wide] [--json]\n"
        "       ferry-dlq-replayer inspect PARTITION:OFFSET | --dataset NAME [filters] [--json]\n"
        "       ferry-dlq-replayer replay  [filters] [--dry-run] [--rate N] [--limit N]\n"
        "                                  [--force] [--json]\n"
        "\n"
        "Reads the dead-letter topic (topic.dlq) from its first to its last record.\n"
        "  list      one row per record: position (partition:offset), dataset, error class,\n"
        "            attempts, failed-at, replay count, status, message; totals per class.\n"
        "            Status: ready (replay would produce it), replayed (the ledger says it\n"
        "            was), interrupted (a replay of it was cut off; replay finds out whether\n"
        "            it landed), at-max (replay count at replay.max_count), bad-topic.\n"
        "  inspect   the decoded event, every header and the ledger entry.\n"
        "  replay    re-produces each selected record to its original topic (header\n"
        "            ferry-original-topic), key and value byte-identical, with\n"
        "            ferry-replay-count + 1. Each record at most once: a Redis ledger\n"
        "            remembers what was replayed, also across a crash (kill -9).\n"
        "\n"
        "Filters (repeat --dataset/--error-class to select several):\n"
        "  -d, --dataset NAME       dataset (the record key), exact or glob: 'sales.*'\n"
        "  -e, --error-class CLASS  e.g. s3-not-found, validation (exact or glob)\n"
        "      --since TIME         failed at or after TIME: 2026-11-26T01:00:00Z, or\n"
        "                           back from now: 30m, 2h, 1h30m, 7d\n"
        "      --until TIME         failed before TIME\n"
        "  -p, --partition N        DLQ partition\n"
        "Output:\n"
        "      --json               machine-readable output on stdout\n"
        "      --ready              list: only records replay would produce\n"
        "      --wide               list: do not cut messages to the terminal width\n"
        "Replay:\n"
        "  -n, --dry-run            print what would be replayed; change nothing\n"
        "      --rate N             at most N records per second (decimals allowed)\n"
        "      --limit N            replay at most N records (in partition:offset order)\n"
        "      --force              also replay records at replay.max_count\n"
        "Common:\n"
        "  -c, --config FILE        key=value settings file (also FERRY_CONFIG)\n"
        "  -X KEY=VALUE             ferry setting, or librdkafka property\n"
        "      --log-level LEVEL    debug, info, warn, error\n"
        "      --dump-config        print the effective settings (secrets redacted)\n"
        "      --timeout SECONDS    give up when Kafka or Redis do not answer within this,\n"
        "                           or a replayed record is not acknowledged (default 30)\n"
        "  -h, --help / -V, --version\n"
        "\n"
        "Exit codes: 0 ok (replay: every selected record replayed or already replayed),\n"
        "1 some records failed or were refused (listed), or a runtime failure; 2 usage.\n\n");
    ferry_conf_help(replayer_defs, fp);
}

static void on_signal(int sig)
{
    static const char msg[] = "second signal: exiting now\n";
    if (replayer_interrupted) {
        if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0) {
        }
        _exit(128 + sig);
    }
    replayer_interrupted = 1;
}

static int parse_number(const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 1e6)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"dataset", required_argument, NULL, 'd'},
        {"error-class", required_argument, NULL, 'e'},
        {"partition", required_argument, NULL, 'p'},
        {"since", required_argument, NULL, REPLAYER_OPT_SINCE},
        {"until", required_argument, NULL, REPLAYER_OPT_UNTIL},
        {"json", no_argument, NULL, REPLAYER_OPT_JSON},
        {"wide", no_argument, NULL, REPLAYER_OPT_WIDE},
        {"ready", no_argument, NULL, REPLAYER_OPT_READY},
        {"dry-run", no_argument, NULL, 'n'},
        {"rate", required_argument, NULL, REPLAYER_OPT_RATE},
        {"limit", required_argument, NULL, REPLAYER_OPT_LIMIT},
        {"force", no_argument, NULL, REPLAYER_OPT_FORCE},
        FERRY_CLI_LONGOPTS,
        FERRY_CLI_TIMEOUT_LONGOPT,
        {NULL, 0, NULL, 0}};
    ferry_cli *cli = ferry_cli_new(replayer_defs);
    replayer rp;
    const char *cmd = NULL;
    char errstr[512];
    int opt, exit_code = FERRY_EXIT_USAGE, is_list, is_inspect, is_replay;
    int replay_only = 0, list_only = 0;
    struct sigaction sa;

    memset(&rp, 0, sizeof(rp));
    ferry_dlq_filter_init(&rp.opt.filter);
    rp.opt.limit = -1;
    if (!cli)
        return FERRY_EXIT_FAILURE;
    if (argc > 1 && argv[1][0] != '-') {
        cmd = argv[1];
        argc--;
        argv++;
    }
    while ((opt = getopt_long(argc, argv, "d:e:p:n" FERRY_CLI_SHORTOPTS, longopts, NULL)) !=
           -1) {
        int r = ferry_cli_common_opt(cli, opt, optarg, errstr, sizeof(errstr));
        if (r == 0)
            r = replayer_filter_opt(&rp.opt, opt, optarg, errstr, sizeof(errstr));
        if (r < 0) {
            fprintf(stderr, "ferry-dlq-replayer: %s\n", errstr);
            goto out;
        }
        if (r > 0)
            continue;
        switch (opt) {
        case REPLAYER_OPT_JSON: rp.opt.json = 1; break;
        case REPLAYER_OPT_WIDE:
            rp.opt.wide = 1;
            list_only = 1;
            break;
        case REPLAYER_OPT_READY:
            rp.opt.ready_only = 1;
            list_only = 1;
            break;
        case 'n':
            rp.opt.dry_run = 1;
            replay_only = 1;
            break;
        case REPLAYER_OPT_FORCE:
            rp.opt.force = 1;
            replay_only = 1;
            break;
        case REPLAYER_OPT_RATE:
            if (parse_number(optarg, &rp.opt.rate)) {
                fprintf(stderr,
                        "ferry-dlq-replayer: --rate wants a number of records per "
                        "second > 0, got \"%s\"\n",
                        optarg);
                goto out;
            }
            replay_only = 1;
            break;
        case REPLAYER_OPT_LIMIT: {
            char *end;
            long long v = strtoll(optarg, &end, 10);
            if (end == optarg || *end || v < 1) {
                fprintf(stderr, "ferry-dlq-replayer: --limit wants a count >= 1, got \"%s\"\n",
                        optarg);
                goto out;
            }
            rp.opt.limit = v;
            replay_only = 1;
            break;
        }
        default: fprintf(stderr, "ferry-dlq-replayer: see --help\n"); goto out;
        }
    }
    if (ferry_cli_info_only(cli, "ferry-dlq-replayer", usage)) {
        exit_code = FERRY_EXIT_OK;
        goto out;
    }
    if (!cmd) {
        usage(stderr);
        goto out;
    }
    is_list = !strcmp(cmd, "list");
    is_inspect = !strcmp(cmd, "inspect");
    is_replay = !strcmp(cmd, "replay");
    if (!is_list && !is_inspect && !is_replay) {
        fprintf(stderr, "ferry-dlq-replayer: unknown command \"%s\" (see --help)\n", cmd);
        goto out;
    }
    if (is_inspect && optind < argc)
        rp.opt.position = argv[optind++];
    if (optind < argc) {
        fprintf(stderr, "ferry-dlq-replayer: unexpected argument \"%s\"\n", argv[optind]);
        goto out;
    }
    if (replay_only && !is_replay) {
        fprintf(stderr, "ferry-dlq-replayer: --dry-run, --rate, --limit and --force are for "
                        "replay\n");
        goto out;
    }
    if (list_only && !is_list) {
        fprintf(stderr, "ferry-dlq-replayer: --ready and --wide are for list\n");
        goto out;
    }
    if (is_inspect) {
        int32_t p;
        int64_t o;
        if (!rp.opt.position && rp.opt.filter.n_datasets == 0) {
            fprintf(stderr, "ferry-dlq-replayer: inspect wants PARTITION:OFFSET or --dataset "
                            "NAME\n");
            goto out;
        }
        if (rp.opt.position && ferry_dlq_parse_position(rp.opt.position, &p, &o) != 0) {
            fprintf(stderr, "ferry-dlq-replayer: \"%s\" is not PARTITION:OFFSET (e.g. 2:17)\n",
                    rp.opt.position);
            goto out;
        }
    }
    if (!(rp.conf = ferry_cli_finish(cli, "ferry-dlq-replayer", NULL, errstr,
                                     sizeof(errstr)))) {
        fprintf(stderr, "ferry-dlq-replayer: %s\n", errstr);
        goto out;
    }
    if (ferry_cli_wants_dump(cli)) { /* printed by ferry_cli_finish */
        exit_code = FERRY_EXIT_OK;
        goto out;
    }
    rp.dlq_topic = ferry_conf_str(rp.conf, "topic.dlq");
    if (!rp.dlq_topic) {
        fprintf(stderr, "ferry-dlq-replayer: topic.dlq is not set\n");
        goto out;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* hiredis writes with write(2); see ferry_redis.h */

    exit_code = FERRY_EXIT_FAILURE;
    ferry_kafka_set_one_shot(1); /* connection errors end up in our final line */
    rp.timeout_ms = ferry_cli_timeout_ms(cli);
    if (replayer_open(&rp, errstr, sizeof(errstr)) != 0) {
        fprintf(stderr, "ferry-dlq-replayer: %s\n", errstr);
        goto out;
    }
    exit_code = is_list      ? replayer_list(&rp)
                : is_inspect ? replayer_inspect(&rp)
                             : replayer_replay(&rp);
out:
    replayer_close(&rp);
    ferry_cli_destroy(cli);
    return exit_code;
}
