/* Config precedence (defaults < file < env < flags), validation, pass-through and
 * secret redaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_cli.h"
#include "ferry_conf.h"
#include "ferry_test.h"

static const ferry_conf_def defs[] = {{"copy.max_in_flight", FERRY_CONF_INT, "16", 1, 1024, 0,
                                       "doc"},
                                      {"copy.verify", FERRY_CONF_BOOL, "true", 0, 0, 0, "doc"},
                                      {NULL, 0, NULL, 0, 0, 0, NULL}};

static char *write_file(const char *text)
{
    static char path[64];
    int fd;
    snprintf(path, sizeof(path), "/tmp/ferry-conf-XXXXXX");
    fd = mkstemp(path);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        abort();
    close(fd);
    return path;
}

static void test_defaults(void)
{
    ferry_conf *c = ferry_conf_new(defs);
    CHECK_STR(ferry_conf_str(c, "topic.onboard"), "ferry.dataset.onboard");
    CHECK_INT(ferry_conf_int(c, "copy.max_in_flight"), 16);
    CHECK_INT(ferry_conf_bool(c, "copy.verify"), 1);
    CHECK(ferry_conf_str(c, "s3.credentials_file") == NULL);
    ferry_conf_destroy(c);
}

static void count_kafka(const char *prop, const char *value, void *opaque)
{
    char *out = opaque;
    strcat(out, prop);
    strcat(out, "=");
    strcat(out, value);
    strcat(out, ";");
}

static void test_precedence(void)
{
    char errstr[256];
    char *path = write_file("# comment\n\ncopy.max_in_flight = 32\nredis.url=redis://file:1\n"
                            "topic.dlq=from-file\nkafka.linger.ms=50\n");
    ferry_cli *cli = ferry_cli_new(defs);
    const ferry_conf *c;
    char kafka[256] = "";

    setenv("FERRY_REDIS_URL", "redis://env:2", 1);
    setenv("FERRY_COPY_MAX_IN_FLIGHT", "64", 1);
    CHECK_INT(ferry_cli_common_opt(cli, 'c', path, errstr, sizeof(errstr)), 1);
    CHECK_INT(ferry_cli_common_opt(cli, 'X', "copy.max_in_flight=128", errstr, sizeof(errstr)),
              1);
    CHECK_INT(ferry_cli_common_opt(cli, 'X', "fetch.wait.max.ms=10", errstr, sizeof(errstr)),
              1);
    CHECK_INT(ferry_cli_common_opt(cli, 'X', "novalue", errstr, sizeof(errstr)), -1);
    c = ferry_cli_finish(cli, "test", NULL, errstr, sizeof(errstr));
    CHECK(c != NULL);
    if (c) {
        CHECK_INT(ferry_conf_int(c, "copy.max_in_flight"), 128);    /* flag beats env */
        CHECK_STR(ferry_conf_str(c, "redis.url"), "redis://env:2"); /* env beats file */
        CHECK_STR(ferry_conf_str(c, "topic.dlq"), "from-file");     /* file beats default */
        CHECK_STR(ferry_conf_str(c, "topic.migrated"), "ferry.dataset.migrated");
        ferry_conf_kafka_foreach(c, count_kafka, kafka);
        CHECK_STR(kafka, "linger.ms=50;fetch.wait.max.ms=10;");
    }
    unsetenv("FERRY_REDIS_URL");
    unsetenv("FERRY_COPY_MAX_IN_FLIGHT");
    ferry_cli_destroy(cli);
    unlink(path);
}

static void test_validation(void)
{
    char errstr[256];
    ferry_conf *c = ferry_conf_new(defs);
    CHECK(ferry_conf_set(c, "copy.max_in_flight", "abc", 0, errstr, sizeof(errstr)) != 0);
    CHECK(strstr(errstr, "not an integer") != NULL);
    CHECK(ferry_conf_set(c, "copy.max_in_flight", "0", 0, errstr, sizeof(errstr)) != 0);
    CHECK(strstr(errstr, "out of range") != NULL);
    CHECK(ferry_conf_set(c, "copy.max_in_flight", "99999999999999999999", 0, errstr,
                         sizeof(errstr)) != 0);
    CHECK(ferry_conf_set(c, "copy.verify", "maybe", 0, errstr, sizeof(errstr)) != 0);
    CHECK(ferry_conf_set(c, "copy.verify", "off", 0, errstr, sizeof(errstr)) == 0);
    CHECK_INT(ferry_conf_bool(c, "copy.verify"), 0);
    CHECK(ferry_conf_set(c, "no.such.key", "1", 0, errstr, sizeof(errstr)) != 0);
    CHECK(strstr(errstr, "unknown setting") != NULL);
    ferry_conf_destroy(c);
}

static void test_file_errors(void)
{
    char errstr[256];
    ferry_conf *c = ferry_conf_new(defs);
    char *path = write_file("copy.max_in_flight=8\nthis line has no equals\n");
    CHECK(ferry_conf_load_file(c, path, errstr, sizeof(errstr)) != 0);
    CHECK(strstr(errstr, ":2:") != NULL);
    unlink(path);
    CHECK(ferry_conf_load_file(c, "/nonexistent/ferry.conf", errstr, sizeof(errstr)) != 0);
    ferry_conf_destroy(c);
}

static void test_dump_redacts(void)
{
    char errstr[256], buf[4096] = "";
    ferry_conf *c = ferry_conf_new(defs);
    FILE *fp = fmemopen(buf, sizeof(buf) - 1, "w");
    ferry_conf_set(c, "redis.url", "redis://:hunter2@h:1", 0, errstr, sizeof(errstr));
    ferry_conf_set(c, "kafka.sasl.password", "hunter3", 0, errstr, sizeof(errstr));
    ferry_conf_dump(c, fp);
    fclose(fp);
    CHECK(strstr(buf, "hunter2") == NULL);
    CHECK(strstr(buf, "hunter3") == NULL);
    CHECK(strstr(buf, "redis.url=[redacted]") != NULL);
    ferry_conf_destroy(c);
}

/* The Kafka security settings are declared (FERRY_KAFKA_* environment names), and the
 * librdkafka properties that hold secrets are recognised (refused on argv, redacted). */
static void test_kafka_security(void)
{
    char errstr[256];
    ferry_conf *c = ferry_conf_new(defs);
    setenv("FERRY_KAFKA_SASL_PASSWORD_FILE", "/run/secrets/kafka", 1);
    setenv("FERRY_KAFKA_SSL_CA_LOCATION", "/etc/ferry/ca.pem", 1);
    CHECK(ferry_conf_load_env(c, errstr, sizeof(errstr)) == 0);
    unsetenv("FERRY_KAFKA_SASL_PASSWORD_FILE");
    unsetenv("FERRY_KAFKA_SSL_CA_LOCATION");
    CHECK(ferry_conf_str(c, "kafka.sasl.password_file") != NULL);
    CHECK(strcmp(ferry_conf_str(c, "kafka.sasl.password_file"), "/run/secrets/kafka") == 0);
    CHECK(strcmp(ferry_conf_str(c, "kafka.ssl.ca.location"), "/etc/ferry/ca.pem") == 0);
    CHECK(ferry_conf_is_declared(c, "kafka.security.protocol"));
    CHECK(!ferry_conf_is_declared(c, "sasl.password"));
    CHECK(ferry_conf_kafka_prop_is_secret("sasl.password"));
    CHECK(ferry_conf_kafka_prop_is_secret("kafka.ssl.key.password"));
    CHECK(ferry_conf_kafka_prop_is_secret("sasl.oauthbearer.client.secret"));
    CHECK(!ferry_conf_kafka_prop_is_secret("sasl.username"));
    CHECK(!ferry_conf_kafka_prop_is_secret("ssl.ca.location"));
    ferry_conf_destroy(c);
}

int main(void)
{
    RUN(test_defaults);
    RUN(test_precedence);
    RUN(test_validation);
    RUN(test_file_errors);
    RUN(test_dump_redacts);
    RUN(test_kafka_security);
    return TEST_EXIT();
}
