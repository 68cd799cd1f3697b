/* ferry_sigv4: AWS Signature Version 4 for S3 requests, signed by us (libcrypto HMAC).
 *
 * Why not libcurl's CURLOPT_AWS_SIGV4: in libcurl 7.88 (Debian 12) it sorts the canonical
 * headers by the whole "name:value" line instead of by name, so a request carrying both
 * x-amz-copy-source and x-amz-copy-source-range / -if-match is signed in an order servers
 * do not use and fails with SignatureDoesNotMatch (checked against S3Proxy). It also needs
 * x-amz-content-sha256 added by hand and breaks on blanked headers. Signing ourselves is
 * ~100 lines, testable against AWS's published examples, and the same on every libcurl.
 *
 * Pure functions; any thread. */
#ifndef FERRY_SIGV4_H
#define FERRY_SIGV4_H

#include <stddef.h>
#include <time.h>

#define FERRY_SIGV4_EMPTY_SHA256                                                               \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define FERRY_SIGV4_UNSIGNED "UNSIGNED-PAYLOAD"
/* aws-chunked body, unsigned, with a trailing checksum */
#define FERRY_SIGV4_UNSIGNED_TRAILER "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

/* A request header. name must be lowercase; value is signed after trimming outer blanks
 * (the caller sends it the same way). */
typedef struct ferry_sigv4_header {
    const char *name;
    const char *value;
} ferry_sigv4_header;

typedef struct ferry_sigv4_request {
    const char *method;          /* "GET", "PUT", ... */
    const char *canonical_uri;   /* the path exactly as sent, already percent-encoded */
    const char *canonical_query; /* exactly as sent (see ferry_uri_query_build); "" if none */
    const ferry_sigv4_header *headers; /* every header to sign, host and x-amz-date included */
    size_t n_headers;                  /* <= 32 */
    const char *payload_hash;          /* hex SHA-256 of the body, or FERRY_SIGV4_UNSIGNED */
    const char *amz_date;              /* "YYYYMMDDTHHMMSSZ", the x-amz-date header's value */
    const char *region;
    const char *service; /* "s3" */
    const char *access_key;
    const unsigned char *signing_key; /* 32 bytes from ferry_sigv4_signing_key() */
} ferry_sigv4_request;

/* "YYYYMMDDTHHMMSSZ" for t (UTC) into out[17]. */
void ferry_sigv4_amz_date(time_t t, char out[17]);

/* kSigning = HMAC chain over date ("YYYYMMDD"), region, service, "aws4_request". Derive it
 * once per day and reuse it; it is as secret as the secret key. Returns 0, -1 on failure. */
int ferry_sigv4_signing_key(const char *secret_key, const char *date8, const char *region,
                            const char *service, unsigned char out[32]);

/* Lowercase hex SHA-256 of data into out[65]. Returns 0, -1 on failure. */
int ferry_sigv4_sha256_hex(const void *data, size_t len, char out[65]);

/* Writes the Authorization header's value ("AWS4-HMAC-SHA256 Credential=..., SignedHeaders=
 * ..., Signature=...") into out. Returns its length, or 0 if out is too small or an input
 * is invalid (too many headers, a name not lowercase, a CR/LF in a value). */
size_t ferry_sigv4_authorization(const ferry_sigv4_request *r, char *out, size_t out_size);

#endif
