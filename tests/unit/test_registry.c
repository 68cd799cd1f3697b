/* The JSON registry: parsing, and the per-file "last good" rule that keeps a malformed or
 * half-written file from ever being acted on. Works in a temporary directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry_registry.h"
#include "ferry_test.h"

static char dir[64];

static void write_file(const char *name, const char *text)
{
    char p[256];
    FILE *fp;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    fp = fopen(p, "w");
    CHECK(fp != NULL);
    if (fp) {
        fputs(text, fp);
        fclose(fp);
    }
}

static void remove_file(const char *name)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    unlink(p);
}

#define DS(name, target)                                                                       \
    "{\"dataset_name\":\"" name "\",\"source\":\"s3://src-b/" name "/\",\"target\":\"" target  \
    "\"}"

static const ferry_onboard *find(const ferry_registry *reg, const char *dataset)
{
    for (size_t i = 0; i < ferry_registry_count(reg); i++)
        if (strcmp(ferry_registry_at(reg, i)->spec.dataset, dataset) == 0)
            return &ferry_registry_at(reg, i)->spec;
    return NULL;
}

static void test_parse(void)
{
    ferry_onboard *specs;
    size_t n;
    ferry_error err = {0};
    const char *ok = "{\"version\":1,\"datasets\":[" DS(
        "a",
        "s3://dst-b/a/") ","
                         "{\"dataset_name\":\"b\",\"source\":\"s3://src-b/b/\",\"target\":\"s3://dst-b/b/\","
                         "\"verify\":false,\"overwrite\":\"always\",\"exclude\":[\"tmp/\"],"
                         "\"inventory\":\"s3://inv-b/src-b/all/manifest.json\"}]}";

    CHECK_INT(ferry_registry_parse(ok, strlen(ok), &specs, &n, &err), FERRY_OK);
    CHECK_INT(n, 2);
    if (n == 2) {
        CHECK_STR(specs[0].dataset, "a");
        CHECK_INT(specs[1].verify, 0);
        CHECK_INT(specs[1].overwrite, FERRY_OVERWRITE_ALWAYS);
        CHECK(specs[0].event_id == NULL);
        CHECK(specs[0].source_inventory == NULL);
        CHECK_STR(specs[1].source_inventory, "s3://inv-b/src-b/all/manifest.json");
    }
    for (size_t i = 0; i < n; i++)
        ferry_onboard_clear(&specs[i]);
    free(specs);

    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"{\"datasets\":[" DS("a", "s3://dst-b/a/"), "line"}, /* half-written */
        {"", "line"},
        {"[]", "JSON object"},
        {"{}", "\"datasets\""},
        {"{\"datasets\":[],\"x\":1}", "unknown top-level"},
        {"{\"version\":2,\"datasets\":[]}", "version"},
        {"{\"datasets\":[" DS("a", "ftp://dst-b/a/") "]}", "target"},
        {"{\"datasets\":[" DS("Bad", "s3://dst-b/a/") "]}", "dataset name"},
        {"{\"datasets\":[" DS("a", "s3://dst-b/a/") "," DS("a", "s3://dst-b/x/") "]}", "twice"},
        {"{\"datasets\":[{\"dataset_name\":\"a\",\"source\":\"s3://s/\",\"target\":\"s3://t/\","
         "\"event_id\":\"0b8e4c1a-2f3d-4e5f-8a9b-0c1d2e3f4a5b\"}]}",
         "unknown field"},
        {"{\"datasets\":[[[[[[[[[[1]]]]]]]]]]}", "deeper"},
        {"{\"datasets\":[{\"dataset_name\":\"a\",\"source\":\"s3://s/\",\"target\":\"s3://t/\","
         "\"inventory\":42}]}",
         "\"inventory\" must be a string"},
        {"{\"datasets\":[{\"dataset_name\":\"a\",\"source\":\"s3://src-b/a/\","
         "\"target\":\"s3://dst-b/a/\",\"inventory\":\"s3://inv-b/src-b/all/\"}]}",
         "inventory must be the s3://bucket/key"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        specs = (ferry_onboard *)1;
        CHECK_INT(ferry_registry_parse(bad[i].text, strlen(bad[i].text), &specs, &n, &err),
                  FERRY_ERR_PERMANENT);
        CHECK(specs == NULL && n == 0);
        if (!strstr(err.msg, bad[i].msg)) {
            fprintf(stderr, "case %zu: \"%s\" lacks \"%s\"\n", i, err.msg, bad[i].msg);
            CHECK(0);
        }
    }
}

static void test_directory_last_good(void)
{
    ferry_registry_result res;
    ferry_error err = {0};
    char errstr[128];
    ferry_registry *reg = ferry_registry_new(dir, errstr, sizeof(errstr));

    write_file("10-sales.json", "{\"datasets\":[" DS("sales", "s3://dst-b/sales/") "]}");
    write_file("20-web.json", "{\"datasets\":[" DS("web", "s3://dst-b/web/") "]}");
    write_file(".20-web.json.swp", "garbage");
    write_file("notes.txt", "garbage");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files, 2);
    CHECK_INT(res.files_changed, 2);
    CHECK_INT(ferry_registry_count(reg), 2);

    /* Unchanged: nothing re-parsed. */
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_changed, 0);
    CHECK_INT(res.files_rejected, 0);

    /* Half-written: rejected once, the last good contents stay. */
    write_file("20-web.json", "{\"datasets\":[" DS("web", "s3://dst-b/web-v2/"));
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_rejected, 1);
    CHECK_INT(ferry_registry_count(reg), 2);
    CHECK(find(reg, "web") && strcmp(find(reg, "web")->target_uri, "s3://dst-b/web/") == 0);
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_rejected, 0); /* the same bad version is reported once */

    /* Completed: taken. */
    write_file("20-web.json", "{\"datasets\":[" DS("web", "s3://dst-b/web-v2/") "]}");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_changed, 1);
    CHECK(find(reg, "web") && strcmp(find(reg, "web")->target_uri, "s3://dst-b/web-v2/") == 0);

    /* A file that never parsed contributes nothing. */
    write_file("30-new.json", "{\"datasets\":[");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_rejected, 1);
    CHECK_INT(ferry_registry_count(reg), 2);

    /* A duplicate dataset in a later file: the first file wins. */
    write_file("30-new.json", "{\"datasets\":[" DS("sales", "s3://dst-b/other/") "]}");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.duplicates, 1);
    CHECK_INT(ferry_registry_count(reg), 2);
    CHECK(find(reg, "sales") &&
          strcmp(find(reg, "sales")->target_uri, "s3://dst-b/sales/") == 0);
    for (size_t i = 0; i < ferry_registry_count(reg); i++)
        if (strcmp(ferry_registry_at(reg, i)->spec.dataset, "sales") == 0)
            CHECK(strstr(ferry_registry_at(reg, i)->file, "/10-sales.json") != NULL);

    /* Deleted files take their datasets with them. */
    remove_file("10-sales.json");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_removed, 1);
    CHECK(find(reg, "sales") &&
          strcmp(find(reg, "sales")->target_uri, "s3://dst-b/other/") == 0);
    remove_file("20-web.json");
    remove_file("30-new.json");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(ferry_registry_count(reg), 0);
    remove_file(".20-web.json.swp");
    remove_file("notes.txt");
    ferry_registry_destroy(reg);
}

static void test_single_file(void)
{
    char path[256], errstr[128];
    ferry_registry_result res;
    ferry_error err = {0};
    ferry_registry *reg;

    snprintf(path, sizeof(path), "%s/registry.json", dir);
    reg = ferry_registry_new(path, errstr, sizeof(errstr));
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_ERR_RETRYABLE); /* missing */
    write_file("registry.json", "{\"datasets\":[" DS("one", "s3://dst-b/one/") "]}");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(ferry_registry_count(reg), 1);
    CHECK_STR(ferry_registry_path(reg), path);
    write_file("registry.json", "");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(res.files_rejected, 1);
    CHECK_INT(ferry_registry_count(reg), 1); /* an emptied file is not "no datasets" */
    write_file("registry.json", "{\"datasets\":[]}");
    CHECK_INT(ferry_registry_reload(reg, &res, &err), FERRY_OK);
    CHECK_INT(ferry_registry_count(reg), 0);
    remove_file("registry.json");
    ferry_registry_destroy(reg);
}

int main(void)
{
    snprintf(dir, sizeof(dir), "/tmp/ferry-test-registry-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    RUN(test_parse);
    RUN(test_directory_last_good);
    RUN(test_single_file);
    rmdir(dir);
    return TEST_EXIT();
}
