#include "ferry_cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ferry_log.h"
#include "ferry_version.h"

typedef struct pending {
    char *key, *value;
    int passthrough;
} pending;

struct ferry_cli {
    ferry_conf *conf;
    char *config_file;
    pending *flags;
    size_t n_flags;
    int help, version, dump;
    int timeout_ms;
};

ferry_cli *ferry_cli_new(const ferry_conf_def *prog_defs)
{
    ferry_cli *cli = calloc(1, sizeof(*cli));
    if (!cli)
        return NULL;
    cli->conf = ferry_conf_new(prog_defs);
    if (!cli->conf) {
        free(cli);
        return NULL;
    }
    cli->timeout_ms = FERRY_CLI_TIMEOUT_DEFAULT_S * 1000;
    return cli;
}

void ferry_cli_destroy(ferry_cli *cli)
{
    if (!cli)
        return;
    for (size_t i = 0; i < cli->n_flags; i++) {
        free(cli->flags[i].key);
        free(cli->flags[i].value);
    }
    free(cli->flags);
    free(cli->config_file);
    ferry_conf_destroy(cli->conf);
    free(cli);
}

static int record(ferry_cli *cli, const char *key, size_t keylen, const char *value,
                  int passthrough, char *errstr, size_t errstr_size)
{
    pending *n = realloc(cli->flags, (cli->n_flags + 1) * sizeof(*n));
    if (!n)
        goto oom;
    cli->flags = n;
    n[cli->n_flags].key = strndup(key, keylen);
    n[cli->n_flags].value = strdup(value);
    n[cli->n_flags].passthrough = passthrough;
    if (!n[cli->n_flags].key || !n[cli->n_flags].value) {
        free(n[cli->n_flags].key);
        free(n[cli->n_flags].value);
        goto oom;
    }
    cli->n_flags++;
    return 0;
oom:
    snprintf(errstr, errstr_size, "out of memory");
    return -1;
}

int ferry_cli_set(ferry_cli *cli, const char *key, const char *value, char *errstr,
                  size_t errstr_size)
{
    return record(cli, key, strlen(key), value, 0, errstr, errstr_size);
}

int ferry_cli_common_opt(ferry_cli *cli, int opt, const char *arg, char *errstr,
                         size_t errstr_size)
{
    const char *eq;
    char *end;
    long secs;

    switch (opt) {
    case FERRY_CLI_OPT_TIMEOUT:
        secs = strtol(arg, &end, 10);
        if (end == arg || *end || secs < 1 || secs > 86400) {
            snprintf(errstr, errstr_size,
                     "--timeout wants whole seconds from 1 to 86400, "
                     "got \"%s\"",
                     arg);
            return -1;
        }
        cli->timeout_ms = (int)secs * 1000;
        return 1;
    case 'c':
        free(cli->config_file);
        cli->config_file = strdup(arg);
        return cli->config_file ? 1 : -1;
    case 'h': cli->help = 1; return 1;
    case 'V': cli->version = 1; return 1;
    case 'D': cli->dump = 1; return 1;
    case 'L': return record(cli, "log.level", 9, arg, 0, errstr, errstr_size) == 0 ? 1 : -1;
    case 'X':
        /* kcat's rule: ferry keys are ours, anything else goes to librdkafka. */
        eq = strchr(arg, '=');
        if (!eq || eq == arg) {
            snprintf(errstr, errstr_size, "-X expects key=value, got \"%s\"", arg);
            return -1;
        }
        return record(cli, arg, (size_t)(eq - arg), eq + 1, 1, errstr, errstr_size) == 0 ? 1
                                                                                         : -1;
    }
    return 0;
}

int ferry_cli_timeout_ms(const ferry_cli *cli) { return cli->timeout_ms; }
int ferry_cli_wants_help(const ferry_cli *cli) { return cli->help; }
int ferry_cli_wants_version(const ferry_cli *cli) { return cli->version; }
int ferry_cli_wants_dump(const ferry_cli *cli) { return cli->dump; }

int ferry_cli_info_only(const ferry_cli *cli, const char *program, void (*usage)(FILE *))
{
    if (cli->help)
        usage(stdout);
    else if (cli->version)
        ferry_cli_print_version(program);
    return cli->help || cli->version;
}

ferry_conf *ferry_cli_finish(ferry_cli *cli, const char *program, const char *worker_id,
                             char *errstr, size_t errstr_size)
{
    const char *file = cli->config_file ? cli->config_file : getenv("FERRY_CONFIG");
    const char *fmt_s;
    char sub[512];
    int lvl;
    ferry_log_format fmt = FERRY_LOG_FMT_AUTO;

    if (file && *file && ferry_conf_load_file(cli->conf, file, errstr, errstr_size) != 0)
        return NULL;
    if (ferry_conf_load_env(cli->conf, errstr, errstr_size) != 0)
        return NULL;
    for (size_t i = 0; i < cli->n_flags; i++) {
        /* argv is visible to every user of the machine (ps, /proc): no secrets there. */
        int kafka_secret = cli->flags[i].passthrough &&
                           !ferry_conf_is_declared(cli->conf, cli->flags[i].key) &&
                           ferry_conf_kafka_prop_is_secret(cli->flags[i].key);
        if (kafka_secret ||
            ferry_conf_value_is_secret(cli->conf, cli->flags[i].key, cli->flags[i].value)) {
            char env[128];
            ferry_conf_env_name(cli->flags[i].key, env, sizeof(env));
            if (!strcmp(cli->flags[i].key, "redis.url"))
                snprintf(errstr, errstr_size,
                         "redis.url carries credentials: set it in the config file or in %s "
                         "(or the password in redis.password_file), not on the command line "
                         "(other users can read it)",
                         env);
            else if (kafka_secret)
                snprintf(
                    errstr, errstr_size,
                    "%s is a secret: set it in the config file (or kafka.sasl.password_file "
                    "for the SASL password), not on the command line (other users can "
                    "read it)",
                    cli->flags[i].key);
            else
                snprintf(errstr, errstr_size,
                         "%s is a secret: set it in the config file or in %s, not on the "
                         "command line (other users can read it)",
                         cli->flags[i].key, env);
            return NULL;
        }
        if (ferry_conf_set(cli->conf, cli->flags[i].key, cli->flags[i].value,
                           cli->flags[i].passthrough, sub, sizeof(sub)) != 0) {
            snprintf(errstr, errstr_size, "%s", sub);
            return NULL;
        }
    }
    lvl = ferry_log_level_parse(ferry_conf_str(cli->conf, "log.level"));
    if (lvl < 0) {
        snprintf(errstr, errstr_size, "log.level must be debug, info, warn or error");
        return NULL;
    }
    fmt_s = ferry_conf_str(cli->conf, "log.format");
    if (fmt_s && strcmp(fmt_s, "json") == 0)
        fmt = FERRY_LOG_FMT_JSON;
    else if (fmt_s && strcmp(fmt_s, "text") == 0)
        fmt = FERRY_LOG_FMT_TEXT;
    else if (fmt_s && strcmp(fmt_s, "auto") != 0) {
        snprintf(errstr, errstr_size, "log.format must be json, text or auto");
        return NULL;
    }
    ferry_log_init(program, worker_id, (ferry_log_level)lvl, fmt);
    if (cli->dump)
        ferry_conf_dump(cli->conf, stdout);
    return cli->conf;
}

void ferry_cli_print_version(const char *program)
{
    printf("%s %s\n", program, FERRY_VERSION_STR);
}
