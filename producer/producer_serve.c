/* `ferry-producer serve`: the long-running producer. Any combination of sources --
 * Backstage catalog poller, JSON registry watcher, HTTP ingest -- shares one Kafka producer
 * (idempotent, acks=all) and one Redis connection. Runs until SIGTERM or SIGINT. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "producer.h"

const ferry_conf_def producer_serve_defs[] = {
    {"backstage.url", FERRY_CONF_STR, NULL, 0, 0, 0,
     "Backstage backend to poll, e.g. http://backstage:7007 (unset: no catalog source)"},
    {"backstage.token", FERRY_CONF_STR, NULL, 0, 0, 1,
     "Bearer token for Backstage external access (prefer backstage.token_file)"},
    {"backstage.token_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "File holding the Backstage bearer token (wins over backstage.token)"},
    {"backstage.ca_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "CA bundle that verifies an https Backstage (default: the system's CAs)"},
    {"backstage.filter", FERRY_CONF_STR, "kind=component,spec.type=dataset", 0, 0, 0,
     "by-query filter selecting dataset entities"},
    {"backstage.poll_interval_ms", FERRY_CONF_INT, "10000", 100, 86400000, 0,
     "Time between two catalog polls"},
    {"backstage.page_size", FERRY_CONF_INT, "200", 1, 10000, 0,
     "Entities per by-query page (limit=)"},
    {"backstage.timeout_ms", FERRY_CONF_INT, "10000", 100, 600000, 0,
     "Timeout of one catalog request"},
    {"backstage.backoff_max_ms", FERRY_CONF_INT, "60000", 1000, 3600000, 0,
     "Longest wait between polls while the catalog (or Kafka, Redis) is failing"},
    {"registry.path", FERRY_CONF_STR, NULL, 0, 0, 0,
     "JSON registry file, or directory of *.json files (unset: no registry source)"},
    {"registry.debounce_ms", FERRY_CONF_INT, "200", 0, 60000, 0,
     "Quiet time after a file change before the registry is re-read"},
    {"registry.rescan_interval_ms", FERRY_CONF_INT, "60000", 1000, 86400000, 0,
     "Full re-read even without inotify events (safety net)"},
    {"http.listen", FERRY_CONF_STR, NULL, 0, 0, 0,
     "ADDR:PORT of the HTTP API (unset: no HTTP server)"},
    {"http.token_file", FERRY_CONF_STR, NULL, 0, 0, 0,
     "File holding the bearer token the HTTP API requires (required with ingest)"},
    {"http.max_body_bytes", FERRY_CONF_INT, "65536", 1024, 16777216, 0,
     "Largest request body; larger ones get 413"},
    {"http.max_json_depth", FERRY_CONF_INT, "10", 2, 64, 0,
     "Deepest JSON nesting accepted in a request"},
    {"http.max_connections", FERRY_CONF_INT, "64", 1, 10000, 0,
     "Concurrent HTTP connections (one thread each)"},
    {"http.rate_limit_per_s", FERRY_CONF_INT, "0", 0, 1000000, 0,
     "POST /v1/events accepted per second (token bucket, burst = one second's worth); "
     "more get 429 with Retry-After. 0: no limit"},
    {"ingest.enabled", FERRY_CONF_BOOL, "false", 0, 0, 0,
     "Accept POST /v1/events on the HTTP API"},
    {"ingest.dedupe_ttl_s", FERRY_CONF_INT, "86400", 60, 31536000, 0,
     "How long a client-chosen event id is remembered (a retried POST is not re-published)"},
    {NULL, 0, NULL, 0, 0, 0, NULL}};

/* ---- stop ----------------------------------------------------------------------- */

int producer_stop_init(producer_stop *s)
{
    if (pipe2(s->fds, O_CLOEXEC | O_NONBLOCK) != 0) {
        s->fds[0] = s->fds[1] = -1;
        return -1;
    }
    return 0;
}

void producer_stop_request(producer_stop *s)
{
    ssize_t n = write(s->fds[1], "x", 1); /* never read: stays readable for everyone */
    (void)n;
}

int producer_stop_wait(producer_stop *s, int64_t ms)
{
    int64_t end = ferry_mono_ms() + (ms > 0 ? ms : 0);

    for (;;) {
        struct pollfd pf = {s->fds[0], POLLIN, 0};
        int64_t left = end - ferry_mono_ms();
        int r = poll(&pf, 1, (int)(left < 0 ? 0 : left > 60000 ? 60000 : left));
        if (r > 0)
            return 1;
        if (r < 0 && errno != EINTR)
            return 0;
        if (ferry_mono_ms() >= end)
            return 0;
    }
}

void producer_stop_close(producer_stop *s)
{
    if (s->fds[0] >= 0)
        close(s->fds[0]);
    if (s->fds[1] >= 0)
        close(s->fds[1]);
}

/* ---- main ----------------------------------------------------------------------- */

static void usage(FILE *fp)
{
    fprintf(
        fp,
        "Usage: ferry-producer serve [options]\n"
        "\n"
        "Runs until SIGTERM or SIGINT, publishing one DatasetOnboard event for each new or\n"
        "changed dataset of any combination of these sources (one Kafka producer and one\n"
        "Redis connection shared by all). A change is published once: the spec hash last\n"
        "published per entity is kept in Redis and recorded after the broker's ack.\n"
        "\n"
        "Sources:\n"
        "      --backstage URL       poll the Backstage catalog at URL (backstage.url);\n"
        "                            token from backstage.token_file or $FERRY_BACKSTAGE_TOKEN\n"
        "      --registry PATH       watch a JSON registry file or directory (registry.path)\n"
        "      --ingest              accept POST /v1/events on the HTTP API (ingest.enabled)\n"
        "HTTP API:\n"
        "      --http ADDR:PORT      serve GET /v1/datasets/NAME, /metrics, /healthz,\n"
        "                            /readyz (and POST /v1/events with --ingest) here\n"
        "                            (http.listen)\n"
        "      --http-token-file F   bearer token the HTTP API requires (http.token_file)\n"
        "\n"
        "  -c, --config FILE         key=value settings file\n"
        "  -X KEY=VALUE              ferry setting, or librdkafka property\n"
        "      --log-level LEVEL     debug, info, warn, error\n"
        "      --dump-config         print the effective settings (secrets redacted)\n"
        "  -h, --help / -V, --version\n\n");
    ferry_conf_help(producer_serve_defs, fp);
}

enum { OPT_BACKSTAGE = 1000, OPT_REGISTRY, OPT_INGEST, OPT_HTTP, OPT_HTTP_TOKEN_FILE };

static ferry_http *start_http(const ferry_conf *conf, producer_ctx *ctx, int ingest,
                              char *errstr, size_t errstr_size)
{
    ferry_http_conf hc;
    ferry_http *h;
    const char *tf = ferry_conf_str(conf, "http.token_file");
    char *token = NULL;

    ferry_http_conf_init(&hc);
    hc.listen = ferry_conf_str(conf, "http.listen");
    hc.max_body_bytes = (size_t)ferry_conf_int(conf, "http.max_body_bytes");
    hc.max_connections = (unsigned)ferry_conf_int(conf, "http.max_connections");
    if (!(h = ferry_http_new(&hc, errstr, errstr_size)))
        return NULL;
    if (tf && *tf) {
        char sub[256];
        if (!(token = ferry_read_small_file(tf, 4096, sub, sizeof(sub)))) {
            snprintf(errstr, errstr_size, "http.token_file: %s", sub);
            goto fail;
        }
        if (strlen(token) < 16) {
            snprintf(errstr, errstr_size,
                     "http.token_file: the token must be at least 16 "
                     "characters");
            goto fail;
        }
        ferry_http_set_bearer_token(h, token, strlen(token));
    }
    if (producer_ingest_routes(h, ctx, ingest) != 0) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    if (producer_observe_routes(h, ctx, errstr, errstr_size) != 0)
        goto fail;
    if (ferry_http_start(h, errstr, errstr_size) != 0)
        goto fail;
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    return h;
fail:
    if (token) {
        explicit_bzero(token, strlen(token));
        free(token);
    }
    ferry_http_destroy(h);
    return NULL;
}

int producer_serve_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"backstage", required_argument, NULL, OPT_BACKSTAGE},
        {"registry", required_argument, NULL, OPT_REGISTRY},
        {"ingest", no_argument, NULL, OPT_INGEST},
        {"http", required_argument, NULL, OPT_HTTP},
        {"http-token-file", required_argument, NULL, OPT_HTTP_TOKEN_FILE},
        FERRY_CLI_LONGOPTS,
        {NULL, 0, NULL, 0}};
    ferry_cli *cli = ferry_cli_new(producer_serve_defs);
    const ferry_conf *conf;
    producer_emitter *em = NULL;
    producer_stop stop = {{-1, -1}};
    producer_ctx ctx;
    ferry_http *http = NULL;
    pthread_t th_bs, th_reg;
    int have_bs = 0, have_reg = 0, run_bs, run_reg, ingest, opt, sig = 0;
    int exit_code = FERRY_EXIT_USAGE;
    const char *s;
    char errstr[512];
    sigset_t sigs;

    if (!cli) {
        fprintf(stderr, "ferry-producer: out of memory\n");
        return FERRY_EXIT_FAILURE;
    }
    optind = 1;
    while ((opt = getopt_long(argc, argv, FERRY_CLI_SHORTOPTS, longopts, NULL)) != -1) {
        int r = ferry_cli_common_opt(cli, opt, optarg, errstr, sizeof(errstr));
        if (r < 0)
            goto usage_error;
        if (r > 0)
            continue;
        switch (opt) {
        case OPT_BACKSTAGE:
            r = ferry_cli_set(cli, "backstage.url", optarg, errstr, sizeof(errstr));
            break;
        case OPT_REGISTRY:
            r = ferry_cli_set(cli, "registry.path", optarg, errstr, sizeof(errstr));
            break;
        case OPT_INGEST:
            r = ferry_cli_set(cli, "ingest.enabled", "true", errstr, sizeof(errstr));
            break;
        case OPT_HTTP:
            r = ferry_cli_set(cli, "http.listen", optarg, errstr, sizeof(errstr));
            break;
        case OPT_HTTP_TOKEN_FILE:
            r = ferry_cli_set(cli, "http.token_file", optarg, errstr, sizeof(errstr));
            break;
        default: snprintf(errstr, sizeof(errstr), "see --help"); goto usage_error;
        }
        if (r != 0)
            goto usage_error;
    }
    if (ferry_cli_info_only(cli, "ferry-producer", usage)) {
        exit_code = FERRY_EXIT_OK;
        goto out;
    }
    if (optind < argc) {
        snprintf(errstr, sizeof(errstr), "unexpected argument \"%s\"", argv[optind]);
        goto usage_error;
    }
    if (!(conf = ferry_cli_finish(cli, "ferry-producer", NULL, errstr, sizeof(errstr))))
        goto usage_error;
    if (ferry_cli_wants_dump(cli)) { /* printed by ferry_cli_finish */
        exit_code = FERRY_EXIT_OK;
        goto out;
    }

    run_bs = (s = ferry_conf_str(conf, "backstage.url")) && *s;
    run_reg = (s = ferry_conf_str(conf, "registry.path")) && *s;
    ingest = ferry_conf_bool(conf, "ingest.enabled");
    s = ferry_conf_str(conf, "http.listen");
    if (!run_bs && !run_reg && !ingest && !(s && *s)) {
        snprintf(errstr, sizeof(errstr),
                 "nothing to serve: give --backstage, --registry, --ingest or --http");
        goto usage_error;
    }
    if (ingest && !(s && *s)) {
        snprintf(errstr, sizeof(errstr), "--ingest needs --http ADDR:PORT (http.listen)");
        goto usage_error;
    }
    if (ingest && !((s = ferry_conf_str(conf, "http.token_file")) && *s)) {
        /* An open ingest endpoint would let anyone start migrations. */
        snprintf(errstr, sizeof(errstr), "--ingest needs --http-token-file (http.token_file)");
        goto usage_error;
    }

    exit_code = FERRY_EXIT_FAILURE;
    signal(SIGPIPE, SIG_IGN);
    /* SIGINT/SIGTERM go to sigwait below, not to any thread started from here on. */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);

    if (producer_stop_init(&stop) != 0) {
        ferry_err(NULL, "pipe: %s", strerror(errno));
        goto out;
    }
    if (!(em = producer_emitter_new(conf, 1, errstr, sizeof(errstr)))) {
        ferry_err(NULL, "%s", errstr);
        exit_code = FERRY_EXIT_USAGE; /* configuration (brokers, redis.url) */
        goto out;
    }
    ctx.conf = conf;
    ctx.em = em;
    ctx.stop = &stop;
    if ((s = ferry_conf_str(conf, "http.listen")) && *s) {
        if (!(http = start_http(conf, &ctx, ingest, errstr, sizeof(errstr)))) {
            ferry_err(NULL, "http: %s", errstr);
            exit_code = FERRY_EXIT_USAGE;
            goto out;
        }
        ferry_info(NULL, "http: listening on %s (port %u)%s", s, ferry_http_port(http),
                   ingest ? ", ingest on POST /v1/events" : "");
    }
    if (run_bs) {
        if ((errno = pthread_create(&th_bs, NULL, producer_backstage_thread, &ctx)) != 0)
            ferry_err(NULL, "cannot start the backstage poller: %s", strerror(errno));
        else
            have_bs = 1;
    }
    if (run_reg) {
        if ((errno = pthread_create(&th_reg, NULL, producer_registry_thread, &ctx)) != 0)
            ferry_err(NULL, "cannot start the registry watcher: %s", strerror(errno));
        else
            have_reg = 1;
    }
    if ((run_bs && !have_bs) || (run_reg && !have_reg))
        goto shutdown;
    ferry_info(NULL, "serving (topic %s, sources:%s%s%s)", producer_topic(em),
               run_bs ? " backstage" : "", run_reg ? " registry" : "", ingest ? " ingest" : "");

    sigwait(&sigs, &sig);
    ferry_info(NULL, "received %s, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    exit_code = FERRY_EXIT_OK;
shutdown:
    producer_stop_request(&stop);
    if (have_bs)
        pthread_join(th_bs, NULL);
    if (have_reg)
        pthread_join(th_reg, NULL);
    goto out;

usage_error:
    fprintf(stderr, "ferry-producer serve: %s\n", errstr);
    exit_code = FERRY_EXIT_USAGE;
out:
    ferry_http_destroy(http); /* waits for requests in flight, which use em */
    producer_observe_stop();
    if (em && producer_emitter_destroy(em) > 0 && exit_code == FERRY_EXIT_OK)
        exit_code = FERRY_EXIT_FAILURE;
    producer_stop_close(&stop);
    ferry_cli_destroy(cli);
    return exit_code;
}
