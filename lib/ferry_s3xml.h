/* ferry_s3xml: expat parsers for the few S3 response documents ferry reads.
 *
 * Hostile input is expected: a DOCTYPE (and so any entity declaration -- billion laughs,
 * external entities) is refused outright, as S3 never sends one; nesting depth, text
 * lengths and entry counts are capped; the caller caps the body size before parsing.
 * Pure functions; any thread. */
#ifndef FERRY_S3XML_H
#define FERRY_S3XML_H

#include <stddef.h>

#include "ferry_objstore.h"

/* The small documents: Error, CopyObjectResult, CopyPartResult,
 * InitiateMultipartUploadResult, CompleteMultipartUploadResult. Fields absent from the
 * document are left "". */
typedef struct ferry_s3xml_result {
    char root[64];                         /* local name of the root element */
    char etag[FERRY_OBJSTORE_ETAG_MAX];    /* ETag, quotes stripped */
    char upload_id[1024];                  /* UploadId */
    char code[FERRY_OBJSTORE_S3_CODE_MAX]; /* Error/Code */
    char message[512];                     /* Error/Message (truncated if longer) */
    /* CopyPartResult and the like: the first Checksum<ALGO> element ("CRC32", ...) */
    char checksum_algo[16];
    char checksum[FERRY_OBJSTORE_CHECKSUM_MAX];
} ferry_s3xml_result;

/* Returns 0, or -1 and a reason in why if the bytes are not a well-formed, acceptable
 * document. */
int ferry_s3xml_parse_result(const char *xml, size_t len, ferry_s3xml_result *r, char *why,
                             size_t why_size);

/* Parses a ListBucketResult (ListObjectsV2) page into l, replacing its previous content
 * but reusing its buffers. Keys are decoded when the page says EncodingType url. Returns
 * 0, or -1 and why (an Error document, a different root, a malformed entry, ...). */
int ferry_s3xml_parse_list(const char *xml, size_t len, ferry_objstore_listing *l, char *why,
                           size_t why_size);

/* Parses a ListMultipartUploadsResult page into l: each entry's key and upload_id (size 0,
 * etag ""); next_token is the page's last key when truncated (send as key-marker). Returns
 * 0, or -1 and why. */
int ferry_s3xml_parse_uploads(const char *xml, size_t len, ferry_objstore_listing *l, char *why,
                              size_t why_size);

/* "2026-11-26T01:18:10.123Z" -> ms since the epoch; -1 if malformed. */
long long ferry_s3xml_parse_time(const char *s);

#endif
