/* ferry_changes against the real Redis (FERRY_REDIS_URL): the check -> publish -> record
 * protocol across "restarts" (a new ferry_changes = a new producer process), generations
 * and their deterministic event ids, removals, and the event-id dedupe. Keys are made
 * under a source named after the pid, and deleted at the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ferry_changes.h"
#include "ferry_redis.h"
#include "ferry_test.h"
#include "integ_env.h"

static ferry_redis *r;
static char source[33];

static ferry_redis *open_redis(const char *url)
{
    ferry_redis_conf c;
    char es[256];
    ferry_redis_conf_init(&c);
    if (ferry_redis_conf_parse_url(&c, url, es, sizeof(es)) != 0) {
        fprintf(stderr, "FERRY_REDIS_URL: %s\n", es);
        exit(1);
    }
    return ferry_redis_new(&c, es, sizeof(es));
}

static void del(const char *key)
{
    const char *argv[] = {"DEL", key};
    redisReply *reply = NULL;
    ferry_error err = {0};
    if (ferry_redis_command(r, 2, argv, NULL, &reply, &err) == FERRY_OK)
        freeReplyObject(reply);
}

static ferry_changes *fresh(void)
{
    char es[128];
    ferry_changes *c = ferry_changes_new(source, es, sizeof(es));
    CHECK(c != NULL);
    return c;
}

static int removed_count;
static void on_removed(const char *ref, void *opaque)
{
    (void)ref;
    (void)opaque;
    removed_count++;
}

static void test_protocol(void)
{
    const char *ref = "component:default/orders";
    const char *h1 = "1111111111111111", *h2 = "2222222222222222";
    ferry_change ch, first;
    ferry_error err = {0};
    ferry_changes *c = fresh();

    /* New entity: publish generation 1. */
    ferry_changes_begin_round(c);
    CHECK_INT(ferry_changes_check(c, r, ref, h1, &ch, &err), FERRY_OK);
    CHECK_INT(ch.publish, 1);
    CHECK_INT(ch.gen, 1);
    CHECK_STR(ch.prev_hash, "");
    first = ch;

    /* Crash before record: the restarted producer decides the same -- same event id. */
    ferry_changes_destroy(c);
    c = fresh();
    CHECK_INT(ferry_changes_check(c, r, ref, h1, &ch, &err), FERRY_OK);
    CHECK_INT(ch.publish, 1);
    CHECK_STR(ch.event_id, first.event_id);

    /* Acked and recorded: unchanged from now on, in this process and the next. */
    CHECK_INT(ferry_changes_record(c, r, ref, &ch, "orders", "uid-1", "etag-1", &err),
              FERRY_OK);
    CHECK_INT(ferry_changes_check(c, r, ref, h1, &ch, &err), FERRY_OK);
    CHECK_INT(ch.publish, 0);
    ferry_changes_destroy(c);
    c = fresh();
    CHECK_INT(ferry_changes_check(c, r, ref, h1, &ch, &err), FERRY_OK);
    CHECK_INT(ch.publish, 0);
    CHECK_INT(ch.gen, 1);

    /* Changed: generation 2, a different event id, previous hash reported. */
    CHECK_INT(ferry_changes_check(c, r, ref, h2, &ch, &err), FERRY_OK);
    CHECK_INT(ch.publish, 1);
    CHECK_INT(ch.gen, 2);
    CHECK_STR(ch.prev_hash, h1);
    CHECK(strcmp(ch.event_id, first.event_id) != 0);
    CHECK_INT(ferry_changes_record(c, r, ref, &ch, "orders", NULL, NULL, &err), FERRY_OK);

    /* Changed back: a new migration again (generation 3), not a replay of generation 1. */
    CHECK_INT(ferry_changes_check(c, r, ref, h1, &ch, &err), FERRY_OK);
    CHECK_INT(ch.publish, 1);
    CHECK_INT(ch.gen, 3);
    CHECK(strcmp(ch.event_id, first.event_id) != 0);
    ferry_changes_destroy(c);
}

static void test_rounds(void)
{
    ferry_changes *c = fresh();
    ferry_change ch;
    ferry_error err = {0};

    ferry_changes_begin_round(c);
    CHECK_INT(ferry_changes_check(c, r, "component:default/a", "aaaaaaaaaaaaaaaa", &ch, &err),
              FERRY_OK);
    CHECK_INT(ferry_changes_record(c, r, "component:default/a", &ch, "a", NULL, NULL, &err),
              FERRY_OK);
    CHECK_INT(ferry_changes_check(c, r, "component:default/b", "bbbbbbbbbbbbbbbb", &ch, &err),
              FERRY_OK);
    CHECK_INT(ferry_changes_record(c, r, "component:default/b", &ch, "b", NULL, NULL, &err),
              FERRY_OK);
    CHECK(ferry_changes_note_invalid(c, "component:default/bad", "cccccccccccccccc") == 1);
    CHECK_INT(ferry_changes_end_round(c, on_removed, NULL), 0);

    ferry_changes_begin_round(c);
    CHECK_INT(ferry_changes_check(c, r, "component:default/a", "aaaaaaaaaaaaaaaa", &ch, &err),
              FERRY_OK);
    CHECK_INT(ch.publish, 0);
    CHECK(ferry_changes_note_invalid(c, "component:default/bad", "cccccccccccccccc") == 0);
    CHECK(ferry_changes_note_invalid(c, "component:default/bad", "dddddddddddddddd") == 1);
    removed_count = 0;
    CHECK_INT(ferry_changes_end_round(c, on_removed, NULL), 1); /* b */
    CHECK_INT(removed_count, 1);

    /* b comes back unchanged: its Redis record stays, so nothing to publish. */
    ferry_changes_begin_round(c);
    CHECK_INT(ferry_changes_check(c, r, "component:default/b", "bbbbbbbbbbbbbbbb", &ch, &err),
              FERRY_OK);
    CHECK_INT(ch.publish, 0);
    ferry_changes_destroy(c);
}

static void test_dedupe(void)
{
    char id[37];
    ferry_dedupe_state st;
    char *receipt = NULL;
    ferry_error err = {0};

    snprintf(id, sizeof(id), "%08x-0000-4000-8000-000000000001", (unsigned)getpid());
    CHECK_INT(ferry_changes_dedupe_claim(r, id, 60000, &st, &receipt, &err), FERRY_OK);
    CHECK_INT(st, FERRY_DEDUPE_NEW);
    CHECK_INT(ferry_changes_dedupe_claim(r, id, 60000, &st, &receipt, &err), FERRY_OK);
    CHECK_INT(st, FERRY_DEDUPE_INFLIGHT);
    /* The publish failed: released, the client may retry. */
    CHECK_INT(ferry_changes_dedupe_release(r, id, &err), FERRY_OK);
    CHECK_INT(ferry_changes_dedupe_claim(r, id, 60000, &st, &receipt, &err), FERRY_OK);
    CHECK_INT(st, FERRY_DEDUPE_NEW);
    CHECK_INT(ferry_changes_dedupe_commit(r, id, "{\"offset\":7}", 60, &err), FERRY_OK);
    CHECK_INT(ferry_changes_dedupe_claim(r, id, 60000, &st, &receipt, &err), FERRY_OK);
    CHECK_INT(st, FERRY_DEDUPE_DONE);
    CHECK_STR(receipt, "{\"offset\":7}");
    free(receipt);
    /* release never removes a committed receipt */
    CHECK_INT(ferry_changes_dedupe_release(r, id, &err), FERRY_OK);
    receipt = NULL;
    CHECK_INT(ferry_changes_dedupe_claim(r, id, 60000, &st, &receipt, &err), FERRY_OK);
    CHECK_INT(st, FERRY_DEDUPE_DONE);
    free(receipt);

    char key[96];
    snprintf(key, sizeof(key), "ferry:changes:event:{%s}", id);
    del(key);
}

static void test_redis_down(void)
{
    ferry_redis_conf c;
    char es[128];
    ferry_redis *dead;
    ferry_changes *ch = fresh();
    ferry_change out;
    ferry_error err = {0};

    ferry_redis_conf_init(&c);
    c.port = 1; /* nothing listens there */
    c.connect_timeout_ms = 500;
    dead = ferry_redis_new(&c, es, sizeof(es));
    CHECK_INT(ferry_changes_check(ch, dead, "component:default/z", "eeeeeeeeeeeeeeee", &out,
                                  &err),
              FERRY_ERR_RETRYABLE);
    /* record fails, but the change is remembered as published (no re-publish meanwhile)
     * and written on the next check once Redis is back */
    out.publish = 1;
    out.gen = 1;
    memcpy(out.hash, "eeeeeeeeeeeeeeee", 17);
    snprintf(out.event_id, sizeof(out.event_id), "0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b");
    CHECK_INT(ferry_changes_record(ch, dead, "component:default/z", &out, "z", NULL, NULL,
                                   &err),
              FERRY_ERR_RETRYABLE);
    CHECK_INT(ferry_changes_check(ch, r, "component:default/z", "eeeeeeeeeeeeeeee", &out, &err),
              FERRY_OK);
    CHECK_INT(out.publish, 0);
    ferry_changes_destroy(ch);
    ch = fresh(); /* a restarted producer finds the record written by the retry */
    CHECK_INT(ferry_changes_check(ch, r, "component:default/z", "eeeeeeeeeeeeeeee", &out, &err),
              FERRY_OK);
    CHECK_INT(out.publish, 0);
    ferry_changes_destroy(ch);
    ferry_redis_destroy(dead);
}

int main(void)
{
    const char *url = integ_require_env("FERRY_REDIS_URL");
    char key[96];

    snprintf(source, sizeof(source), "it-%d", (int)getpid());
    r = open_redis(url);
    RUN(test_protocol);
    RUN(test_rounds);
    RUN(test_dedupe);
    RUN(test_redis_down);
    snprintf(key, sizeof(key), "ferry:changes:{%s}:published", source);
    del(key);
    ferry_redis_destroy(r);
    return TEST_EXIT();
}
