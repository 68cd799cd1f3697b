#include "ferry_creds.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy_field(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size)
        return -1;
    memcpy(dst, src, n + 1);
    return 0;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

static ferry_rc load_file(const char *path, const char *profile, ferry_s3_creds *out,
                          ferry_error *err)
{
    FILE *fp = fopen(path, "r");
    char line[4608];
    int in_profile = 0;
    ferry_rc rc = FERRY_OK;

    if (!fp)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                               "cannot open credentials file %s: %s", path, strerror(errno));
    while (fgets(line, sizeof(line), fp)) {
        char *p = trim(line), *eq, *k, *v;
        if (!*p || *p == '#' || *p == ';')
            continue;
        if (*p == '[') {
            char *end = strchr(p, ']');
            if (end)
                *end = '\0';
            p = trim(p + 1);
            if (strncmp(p, "profile ", 8) == 0)
                p = trim(p + 8);
            in_profile = strcmp(p, profile) == 0;
            continue;
        }
        if (!in_profile || !(eq = strchr(p, '=')))
            continue;
        *eq = '\0';
        k = trim(p);
        v = trim(eq + 1);
        if ((strcmp(k, "aws_access_key_id") == 0 &&
             copy_field(out->access_key, sizeof(out->access_key), v)) ||
            (strcmp(k, "aws_secret_access_key") == 0 &&
             copy_field(out->secret_key, sizeof(out->secret_key), v)) ||
            (strcmp(k, "aws_session_token") == 0 &&
             copy_field(out->session_token, sizeof(out->session_token), v))) {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                                 "credentials file %s: value of %s is too long", path, k);
            break;
        }
    }
    memset(line, 0, sizeof(line));
    fclose(fp);
    return rc;
}

ferry_rc ferry_s3_creds_load(const ferry_conf *conf, ferry_s3_creds *out, ferry_error *err)
{
    const char *id = getenv("AWS_ACCESS_KEY_ID");
    const char *secret = getenv("AWS_SECRET_ACCESS_KEY");
    const char *token = getenv("AWS_SESSION_TOKEN");
    const char *file;
    ferry_rc rc;

    memset(out, 0, sizeof(*out));
    if (id && *id && secret && *secret) {
        if (copy_field(out->access_key, sizeof(out->access_key), id) ||
            copy_field(out->secret_key, sizeof(out->secret_key), secret) ||
            (token && copy_field(out->session_token, sizeof(out->session_token), token)))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                                   "AWS credentials in the environment are too long");
        return FERRY_OK;
    }
    file = ferry_conf_str(conf, "s3.credentials_file");
    if (!file)
        file = getenv("AWS_SHARED_CREDENTIALS_FILE");
    if (!file)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                               "no S3 credentials: set AWS_ACCESS_KEY_ID and "
                               "AWS_SECRET_ACCESS_KEY, or s3.credentials_file");
    rc = load_file(file,
                   ferry_conf_str(conf, "s3.profile") ? ferry_conf_str(conf, "s3.profile")
                                                      : "default",
                   out, err);
    if (rc != FERRY_OK)
        return rc;
    if (!out->access_key[0] || !out->secret_key[0])
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                               "credentials file %s has no aws_access_key_id and "
                               "aws_secret_access_key for profile %s",
                               file, ferry_conf_str(conf, "s3.profile"));
    return FERRY_OK;
}

ferry_rc ferry_s3_target_creds_load(const ferry_conf *conf, ferry_s3_creds *out,
                                    ferry_error *err)
{
    const char *id = ferry_conf_str(conf, "s3.target.access_key_id");
    const char *secret = ferry_conf_str(conf, "s3.target.secret_access_key");
    const char *token = ferry_conf_str(conf, "s3.target.session_token");
    const char *file = ferry_conf_str(conf, "s3.target.credentials_file");
    const char *profile = ferry_conf_str(conf, "s3.target.profile");

    memset(out, 0, sizeof(*out));
    if (id && secret) {
        if (copy_field(out->access_key, sizeof(out->access_key), id) ||
            copy_field(out->secret_key, sizeof(out->secret_key), secret) ||
            (token && copy_field(out->session_token, sizeof(out->session_token), token)))
            return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                                   "target credentials are too long");
        return FERRY_OK;
    }
    if (id || secret)
        return ferry_error_set(
            err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
            "set both s3.target.access_key_id and s3.target.secret_access_key");
    if (file) {
        ferry_rc rc = load_file(file, profile ? profile : "default", out, err);
        if (rc == FERRY_OK && (!out->access_key[0] || !out->secret_key[0]))
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_CONFIG,
                                 "credentials file %s has no keys for profile %s", file,
                                 profile ? profile : "default");
        return rc;
    }
    return ferry_s3_creds_load(conf, out, err);
}

void ferry_s3_creds_wipe(ferry_s3_creds *c)
{
    if (c)
        explicit_bzero(c, sizeof(*c));
}
