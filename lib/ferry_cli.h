/* ferry_cli: the command-line plumbing every program shares -- --config, -X, --help,
 * --version, --log-level -- and the precedence rule: defaults < file < env < flags.
 * Flags are recorded while getopt runs and applied last by ferry_cli_finish(). */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <getopt.h>
#include <stddef.h>
#include <stdio.h>

#include "ferry_conf.h"

/* Exit codes shared by all programs. */
#define FERRY_EXIT_OK 0
#define FERRY_EXIT_FAILURE 1
#define FERRY_EXIT_USAGE 2

/* Long options every program accepts; put these in each program's getopt table. */
#define FERRY_CLI_LONGOPTS                                                                     \
    {"config", required_argument, NULL, 'c'}, {"help", no_argument, NULL, 'h'},                \
        {"version", no_argument, NULL, 'V'}, {"log-level", required_argument, NULL, 'L'},      \
    {                                                                                          \
        "dump-config", no_argument, NULL, 'D'                                                  \
    }
#define FERRY_CLI_SHORTOPTS "c:hVX:"

/* --timeout SECONDS, for one-shot commands that talk to Kafka, Redis or S3: put it in
 * their getopt table (long-running programs have none). */
#define FERRY_CLI_OPT_TIMEOUT 900
#define FERRY_CLI_TIMEOUT_LONGOPT                                                              \
    {                                                                                          \
        "timeout", required_argument, NULL, FERRY_CLI_OPT_TIMEOUT                              \
    }
#define FERRY_CLI_TIMEOUT_DEFAULT_S 30
#define FERRY_CLI_TIMEOUT_HELP                                                                 \
    "      --timeout SECONDS     give up when Kafka/Redis do not answer within this\n"         \
    "                            (default 30)\n"

typedef struct ferry_cli ferry_cli;

ferry_cli *ferry_cli_new(const ferry_conf_def *prog_defs);
void ferry_cli_destroy(ferry_cli *cli);

/* Handles a common option. Returns 1 if handled, 0 if not ours, -1 on error (errstr). */
int ferry_cli_common_opt(ferry_cli *cli, int opt, const char *arg, char *errstr,
                         size_t errstr_size);
/* Records key=value from a program-specific flag (applied after file and env). */
int ferry_cli_set(ferry_cli *cli, const char *key, const char *value, char *errstr,
                  size_t errstr_size);
/* --timeout in ms (default FERRY_CLI_TIMEOUT_DEFAULT_S). */
int ferry_cli_timeout_ms(const ferry_cli *cli);
int ferry_cli_wants_help(const ferry_cli *cli);
int ferry_cli_wants_version(const ferry_cli *cli);
/* --help or --version was given: prints the program's usage (via `usage`) or version and
 * returns 1; the program then exits 0. Returns 0 otherwise. Call before ferry_cli_finish. */
int ferry_cli_info_only(const ferry_cli *cli, const char *program, void (*usage)(FILE *));
/* --dump-config was given: ferry_cli_finish printed the settings; the program exits 0. */
int ferry_cli_wants_dump(const ferry_cli *cli);

/* Applies file (--config, or FERRY_CONFIG), then env, then flags; initialises logging
 * from log.level/log.format. Returns the finished conf (owned by cli) or NULL + errstr. */
ferry_conf *ferry_cli_finish(ferry_cli *cli, const char *program, const char *worker_id,
                             char *errstr, size_t errstr_size);

void ferry_cli_print_version(const char *program);

#endif
