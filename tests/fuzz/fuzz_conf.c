/* Fuzz target: --config files (ferry_conf_load_file: key=value lines, comments, kafka.*
 * pass-through) and the secret-redacting dump of what was loaded.
 *
 * ferry_conf_load_file takes a path: the input is written to a memfd once per run and
 * read back through /proc/self/fd/N, so the loader is fuzzed as it is, without a
 * buffer-loading twin. Invariants: a load failure explains itself in a NUL-terminated
 * message; integer settings stay within their bounds; the dump never shows the value of a
 * secret setting (redis.url) nor of a kafka.* property whose name says password, secret
 * or token. */
#include "fuzz.h"

#include "ferry_conf.h"

#include <sys/mman.h>
#include <unistd.h>

static int memfd = -1;

typedef struct dump_check {
    const char *dump;
} dump_check;

/* kafka.<prop> lines whose value must be redacted in the dump. */
static void check_kafka(const char *prop, const char *value, void *opaque)
{
    const dump_check *d = opaque;
    char *line;

    if (!*value ||
        !(strstr(prop, "password") || strstr(prop, "secret") || strstr(prop, "token")))
        return;
    FUZZ_ASSERT(asprintf(&line, "\nkafka.%s=%s\n", prop, value) > 0);
    if (strstr(d->dump, line) && strcmp(value, "[redacted]") != 0) {
        fprintf(stderr, "fuzz_conf: secret kafka property shown in the dump: %s", line);
        abort();
    }
    free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[64], errstr[600];
    ferry_conf *c;
    char *dump = NULL;
    size_t dump_len = 0;
    FILE *fp;

    if (memfd < 0) {
        memfd = memfd_create("fuzz_conf", MFD_CLOEXEC);
        FUZZ_ASSERT(memfd >= 0);
    }
    FUZZ_ASSERT(ftruncate(memfd, 0) == 0);
    FUZZ_ASSERT(pwrite(memfd, data, size, 0) == (ssize_t)size);
    snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);

    c = ferry_conf_new(NULL);
    FUZZ_ASSERT(c);
    memset(errstr, 'x', sizeof(errstr));
    if (ferry_conf_load_file(c, path, errstr, sizeof(errstr)) != 0) {
        FUZZ_ASSERT(fuzz_terminated(errstr, sizeof(errstr)) && errstr[0]);
        goto out;
    }
    long long t = ferry_conf_int(c, "s3.timeout_ms");
    FUZZ_ASSERT(t >= 1000 && t <= 3600000);
    (void)ferry_conf_bool(c, "s3.path_style");

    fp = open_memstream(&dump, &dump_len);
    FUZZ_ASSERT(fp);
    ferry_conf_dump(c, fp);
    FUZZ_ASSERT(fclose(fp) == 0);
    const char *url = ferry_conf_str(c, "redis.url");
    if (url) {
        char *line;
        FUZZ_ASSERT(asprintf(&line, "\nredis.url=%s\n", url) > 0);
        if (strstr(dump, line) && strcmp(url, "[redacted]") != 0) {
            fprintf(stderr, "fuzz_conf: redis.url shown in the dump\n");
            abort();
        }
        free(line);
    }
    dump_check d = {dump};
    ferry_conf_kafka_foreach(c, check_kafka, &d);
out:
    free(dump);
    ferry_conf_destroy(c);
    return 0;
}
