/* ferry-worker: one member of the "ferry-workers" consumer group. Add processes to go
 * faster (up to the partition count). main parses the command line, runs `status` or
 * `run` (worker_run.c) and exits. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "worker.h"
#include "worker_status.h"

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "Usage: ferry-worker [run] [options]\n"
        "       ferry-worker status [--watch] [--json] [options]\n"
        "\n"
        "run (default): join the consumer group and migrate datasets until SIGTERM.\n"
        "  A first SIGTERM/SIGINT checkpoints and leaves the group within\n"
        "  shutdown.timeout_ms; a second one exits at once.\n"
        "status: show every migration known to Redis with progress, rate and ETA.\n"
        "\n"
        "  -c, --config FILE      key=value settings file (also FERRY_CONFIG)\n"
        "  -X KEY=VALUE           ferry setting, or librdkafka property (e.g.\n"
        "                         -X partition.assignment.strategy=cooperative-sticky)\n"
        "      --log-level LEVEL  debug, info, warn, error\n"
        "      --http ADDR:PORT   serve /metrics, /healthz, /readyz and the status page\n"
        "                         (http.listen; e.g. 127.0.0.1:9464)\n"
        "      --dump-config      print the effective settings (secrets redacted)\n"
        "      --timeout SECONDS  status: give up when Redis does not answer within this\n"
        "                         (default 30)\n"
        "  -h, --help / -V, --version\n\n"
        "S3 credentials come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_SESSION_TOKEN\n"
        "or s3.credentials_file, never from the command line.\n\n");
    ferry_conf_help(worker_conf_defs, fp);
}

static void default_id(char *out, size_t size)
{
    char host[64] = "worker";
    gethostname(host, sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    snprintf(out, size, "%s-%d", host, (int)getpid());
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"watch", no_argument, NULL, 'w'},
                                             {"json", no_argument, NULL, 'j'},
                                             {"http", required_argument, NULL, 'H'},
                                             FERRY_CLI_LONGOPTS,
                                             FERRY_CLI_TIMEOUT_LONGOPT,
                                             {NULL, 0, NULL, 0}};
    ferry_cli *cli = ferry_cli_new(worker_conf_defs);
    const ferry_conf *conf;
    char errstr[512], id[128];
    int opt, exit_code = FERRY_EXIT_USAGE, status = 0, watch = 0, json = 0, abandoned = 0;

    if (!cli)
        return FERRY_EXIT_FAILURE;
    if (argc > 1 && argv[1][0] != '-') {
        if (!strcmp(argv[1], "status"))
            status = 1;
        else if (strcmp(argv[1], "run") != 0) {
            fprintf(stderr, "ferry-worker: unknown command \"%s\" (see --help)\n", argv[1]);
            goto out;
        }
        argc--;
        argv++;
    }
    while ((opt = getopt_long(argc, argv, FERRY_CLI_SHORTOPTS, longopts, NULL)) != -1) {
        int r;
        if (opt == FERRY_CLI_OPT_TIMEOUT && !status) {
            fprintf(stderr, "ferry-worker: --timeout is for status; run waits for its "
                            "services until stopped\n");
            goto out;
        }
        r = ferry_cli_common_opt(cli, opt, optarg, errstr, sizeof(errstr));
        if (r < 0) {
            fprintf(stderr, "ferry-worker: %s\n", errstr);
            goto out;
        }
        if (r > 0)
            continue;
        if (opt == 'w' && status)
            watch = 1;
        else if (opt == 'j' && status)
            json = 1;
        else if (opt == 'H' && !status) {
            if (ferry_cli_set(cli, "http.listen", optarg, errstr, sizeof(errstr)) != 0) {
                fprintf(stderr, "ferry-worker: %s\n", errstr);
                goto out;
            }
        } else if (opt == 'w' || opt == 'j') {
            fprintf(stderr, "ferry-worker: --watch and --json are for status\n");
            goto out;
        } else if (opt == 'H') {
            fprintf(stderr, "ferry-worker: --http is for run\n");
            goto out;
        } else {
            fprintf(stderr, "ferry-worker: see --help\n");
            goto out;
        }
    }
    if (ferry_cli_info_only(cli, "ferry-worker", usage)) {
        exit_code = FERRY_EXIT_OK;
        goto out;
    }
    if (optind < argc) {
        fprintf(stderr, "ferry-worker: unexpected argument \"%s\"\n", argv[optind]);
        goto out;
    }
    default_id(id, sizeof(id));
    if (!(conf = ferry_cli_finish(cli, "ferry-worker", NULL, errstr, sizeof(errstr)))) {
        fprintf(stderr, "ferry-worker: %s\n", errstr);
        goto out;
    }
    if (ferry_cli_wants_dump(cli)) { /* printed by ferry_cli_finish */
        exit_code = FERRY_EXIT_OK;
        goto out;
    }
    if (ferry_conf_str(conf, "worker.id")) {
        const char *set = ferry_conf_str(conf, "worker.id");
        /* It becomes part of lease values ("<id>/<thread>") and log lines. */
        for (const char *p = set; *p; p++)
            if ((unsigned char)*p < 0x21 || *p == 0x7f) {
                fprintf(stderr, "ferry-worker: worker.id may not contain spaces or control "
                                "characters\n");
                goto out;
            }
        if (strlen(set) > 100) {
            fprintf(stderr, "ferry-worker: worker.id is longer than 100 characters\n");
            goto out;
        }
        snprintf(id, sizeof(id), "%s", set);
    }
    if (status) {
        exit_code = worker_status_main(conf, watch, json, ferry_cli_timeout_ms(cli));
        goto out;
    }
    exit_code = worker_run(conf, id, &abandoned);
    if (abandoned) {
        /* Migration threads are still stopping and use what exit() would tear down. */
        fflush(NULL);
        _exit(exit_code);
    }
out:
    ferry_cli_destroy(cli);
    return exit_code;
}
