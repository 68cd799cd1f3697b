/* ferry-producer: turns dataset registrations into DatasetOnboard events on Kafka. */
#include <stdio.h>
#include <string.h>

#include "ferry_cli.h"
#include "producer.h"

static void usage(FILE *fp)
{
    fprintf(fp,
            "Usage: ferry-producer <command> [options]\n"
            "\n"
            "Commands:\n"
            "  publish   publish one DatasetOnboard event and wait until Kafka has it\n"
            "  serve     publish events for new or changed datasets from a Backstage catalog,\n"
            "            a JSON registry and/or an HTTP API, until stopped\n"
            "\n"
            "Run `ferry-producer <command> --help` for the command's options.\n"
            "Options for every command: --config FILE, -X key=value, --log-level LEVEL,\n"
            "--help, --version. Exit codes: 0 ok, 1 runtime failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return FERRY_EXIT_USAGE;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return FERRY_EXIT_OK;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
        ferry_cli_print_version("ferry-producer");
        return FERRY_EXIT_OK;
    }
    if (!strcmp(argv[1], "publish"))
        return producer_publish_main(argc - 1, argv + 1);
    if (!strcmp(argv[1], "serve"))
        return producer_serve_main(argc - 1, argv + 1);
    fprintf(stderr, "ferry-producer: unknown command \"%s\"\n\n", argv[1]);
    usage(stderr);
    return FERRY_EXIT_USAGE;
}
