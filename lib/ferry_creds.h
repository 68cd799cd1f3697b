/* ferry_creds: S3 credentials from the environment or an AWS shared credentials file --
 * never from argv, never logged. */
#ifndef FERRY_CREDS_H
#define FERRY_CREDS_H

#include "ferry_conf.h"
#include "ferry_error.h"

typedef struct ferry_s3_creds {
    char access_key[256];
    char secret_key[256];
    char session_token[4096]; /* empty if none */
} ferry_s3_creds;

/* Source (default) credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
 * AWS_SESSION_TOKEN win; otherwise the [s3.profile] section of s3.credentials_file (or
 * AWS_SHARED_CREDENTIALS_FILE). */
ferry_rc ferry_s3_creds_load(const ferry_conf *conf, ferry_s3_creds *out, ferry_error *err);
/* Target credentials: s3.target.access_key_id/secret_access_key/session_token (from the
 * environment FERRY_S3_TARGET_* or the config file), else s3.target.credentials_file,
 * else the source credentials. */
ferry_rc ferry_s3_target_creds_load(const ferry_conf *conf, ferry_s3_creds *out,
                                    ferry_error *err);
/* Zeroes the secrets (call before the struct goes out of scope). */
void ferry_s3_creds_wipe(ferry_s3_creds *c);

#endif
