/* ferry_uri: `s3://bucket/prefix` URIs, S3 bucket/prefix rules, and the RFC 3986
 * percent-encoding and canonical query strings that S3 request signing needs.
 *
 * Pure functions: no allocation, no I/O; any thread may call them. */
#ifndef FERRY_URI_H
#define FERRY_URI_H

#include <stddef.h>

#include "ferry_error.h"

#define FERRY_URI_BUCKET_MAX 63
#define FERRY_URI_KEY_MAX 1024 /* S3's limit on a key (and so a prefix), in bytes */

typedef struct ferry_uri {
    char bucket[FERRY_URI_BUCKET_MAX + 1];
    char prefix[FERRY_URI_KEY_MAX + 1]; /* "" for the whole bucket; never starts with '/' */
} ferry_uri;

/* Parses "s3://bucket[/prefix]". "s3://b" and "s3://b/" both mean the whole bucket; the
 * prefix is kept byte for byte otherwise ("s3://b/data" and "s3://b/data/" differ, as they
 * do for S3 listings). On failure: FERRY_ERR_PERMANENT, class invalid-spec, and a message
 * saying which rule the text broke. */
ferry_rc ferry_uri_parse(const char *text, ferry_uri *out, ferry_error *err);

/* "s3://bucket/prefix" into out; returns what snprintf returns. */
int ferry_uri_format(const ferry_uri *u, char *out, size_t size);

/* S3 bucket naming rules: 3-63 chars of [a-z0-9.-], starting and ending with a letter or
 * digit, no "..", not an IPv4 address, none of S3's reserved prefixes/suffixes
 * ("xn--", "sthree-", "-s3alias", "--ol-s3", ...). Returns 1 if valid, else 0 and why. */
int ferry_uri_bucket_valid(const char *name, char *why, size_t why_size);

/* Rules for a dataset prefix (stricter than S3's for keys): valid UTF-8, at most 1024
 * bytes, no control characters (C0, DEL, C1), no leading '/', no "." or ".." path segment.
 * Returns 1 if valid, else 0 and why. */
int ferry_uri_prefix_valid(const char *prefix, char *why, size_t why_size);

/* Whether two locations share objects: same bucket and one prefix is a string prefix of
 * the other (S3 prefixes are plain string prefixes: "data" also lists "data2/x"). The
 * worker refuses to copy between overlapping locations. */
int ferry_uri_overlaps(const ferry_uri *a, const ferry_uri *b);

/* RFC 3986 percent-encoding as SigV4 wants it: every byte except A-Z a-z 0-9 - _ . ~ (and
 * '/' when keep_slash) becomes %XX with upper-case hex. Writes at most out_size bytes
 * including the NUL; returns the length the full encoding needs (like snprintf), so a
 * result >= out_size means it was truncated. */
size_t ferry_uri_pct_encode(const char *in, size_t len, int keep_slash, char *out,
                            size_t out_size);

/* Decodes %XX (and '+' as a space when plus_is_space, as S3's encoding-type=url does).
 * out may equal in (decoding never grows). Returns the decoded length, or (size_t)-1 on a
 * malformed escape, a decoded NUL byte, or if out_size is too small (needs len + 1). */
size_t ferry_uri_pct_decode(const char *in, size_t len, int plus_is_space, char *out,
                            size_t out_size);

/* One query parameter; value NULL means valueless (sent as "name="). */
typedef struct ferry_uri_qparam {
    const char *name;
    const char *value;
} ferry_uri_qparam;

/* Builds the canonical query string SigV4 signs and that we then send unchanged: names and
 * values percent-encoded, sorted by encoded name then value, joined by '&', valueless
 * parameters as "name=". params is reordered in place (n <= 16). Returns the needed
 * length as ferry_uri_pct_encode does, or (size_t)-1 if n > 16. */
size_t ferry_uri_query_build(ferry_uri_qparam *params, size_t n, char *out, size_t out_size);

#endif
