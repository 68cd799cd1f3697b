/* Fuzz target: redis.url (ferry_redis_conf_parse_url), which comes from config files,
 * FERRY_REDIS_URL and -X, and carries the Redis password.
 * Invariants: on success host, username and password are NUL-terminated in their arrays,
 * the host is non-empty, port and db in range; on failure the conf is left byte for byte
 * unchanged and the message is NUL-terminated and echoes no part of the URL: it is plain
 * ASCII (the fuzzer puts bytes >= 0x80 everywhere) and never holds the userinfo. */
#include "fuzz.h"

#include "ferry_redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = fuzz_cstr(data, size);
    ferry_redis_conf conf, before;
    char errstr[300];

    ferry_redis_conf_init(&conf);
    /* a recognisable state, to see that a failure leaves it alone */
    snprintf(conf.host, sizeof(conf.host), "before.example");
    snprintf(conf.username, sizeof(conf.username), "before-user");
    snprintf(conf.password, sizeof(conf.password), "before-password");
    conf.port = 4242;
    conf.db = 7;
    before = conf;
    memset(errstr, 'x', sizeof(errstr));

    if (ferry_redis_conf_parse_url(&conf, url, errstr, sizeof(errstr)) == 0) {
        FUZZ_ASSERT(fuzz_terminated(conf.host, sizeof(conf.host)) && conf.host[0]);
        FUZZ_ASSERT(fuzz_terminated(conf.username, sizeof(conf.username)));
        FUZZ_ASSERT(fuzz_terminated(conf.password, sizeof(conf.password)));
        FUZZ_ASSERT(conf.port >= 1 && conf.port <= 65535);
        FUZZ_ASSERT(conf.db >= 0 && conf.db <= 1000000);
        FUZZ_ASSERT(conf.connect_timeout_ms == before.connect_timeout_ms);
        FUZZ_ASSERT(conf.command_timeout_ms == before.command_timeout_ms);
    } else {
        FUZZ_ASSERT(memcmp(&conf, &before, sizeof(conf)) == 0);
        FUZZ_ASSERT(fuzz_terminated(errstr, sizeof(errstr)) && errstr[0]);
        for (const char *q = errstr; *q; q++)
            FUZZ_ASSERT((unsigned char)*q < 0x80);
        /* userinfo: between "redis://" and the last '@' before the first '/' */
        if (strncmp(url, "redis://", 8) == 0) {
            const char *p = url + 8, *slash = strchr(p, '/');
            const char *end = slash ? slash : p + strlen(p), *at = NULL;
            for (const char *q = p; q < end; q++)
                if (*q == '@')
                    at = q;
            /* (only a userinfo with a character no message uses: "host" is no leak) */
            size_t n = at ? (size_t)(at - p) : 0;
            if (n && strcspn(p, "!$&*;=~_|^{}") < n && memmem(errstr, strlen(errstr), p, n)) {
                fprintf(stderr, "fuzz_redis_url: error message shows the userinfo: %s\n",
                        errstr);
                abort();
            }
        }
    }
    ferry_redis_conf_clear(&conf);
    free(url);
    return 0;
}
