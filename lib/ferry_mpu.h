/* ferry_mpu: a multipart upload's progress in Redis, so that a worker that dies in the
 * middle of a large object leaves the next owner the parts already stored (DESIGN.md §9
 * "Multipart state").
 *
 * Key (the dataset is the lease's, so the record shares its Redis Cluster slot):
 *   ferry:{<dataset>}:mpu:<16 hex digits>   hash, one per target object being uploaded
 *     bucket, key        the target object (the hex digits are a hash of them)
 *     upload_id          the upload to continue
 *     part_size, size    the plan, and the source size it was made for
 *     src_etag           the source version being copied
 *     p<n>               ETag of finished part n
 *     c<n>               "<ALGO>:<checksum>" of part n, when the upload has an additional
 *                        checksum algorithm (S3 wants it in CompleteMultipartUpload)
 * Writes run as Lua scripts that refuse unless the lease still reads "<worker>:<fence>"
 * (FERRY_ERR_CANCELLED "fenced", as in ferry_state.h). Records expire after
 * FERRY_MPU_TTL_MS without a write, like S3's usual lifecycle rule for incomplete uploads.
 * One thread at a time per ferry_redis handle. */
#ifndef FERRY_MPU_H
#define FERRY_MPU_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_error.h"
#include "ferry_objstore.h"
#include "ferry_redis.h"
#include "ferry_state.h"

#define FERRY_MPU_TTL_MS (7LL * 24 * 3600 * 1000)
#define FERRY_MPU_KEY_MAX (FERRY_STATE_DATASET_MAX + 40)

/* Writes "ferry:{<dataset>}:mpu:<hash of bucket and key>" into buf. FERRY_OK, or PERMANENT
 * for a dataset name refused in keys or a buffer too small. */
ferry_rc ferry_mpu_key(char *buf, size_t size, const char *dataset, const char *bucket,
                       const char *key, ferry_error *err);

/* A record as read back. Strings and parts are heap-owned; free with
 * ferry_mpu_record_clear(). */
typedef struct ferry_mpu_record {
    char *upload_id;
    char *src_etag;
    uint64_t part_size;
    uint64_t size;
    ferry_objstore_mpu_part *parts; /* nparts finished parts, in no particular order */
    size_t nparts;
} ferry_mpu_record;

void ferry_mpu_record_clear(ferry_mpu_record *rec);

/* Reads the record of bucket/key under dataset. *found is 0 when there is none (or it
 * belongs to another object whose name hashed alike). */
ferry_rc ferry_mpu_get(ferry_redis *r, const char *dataset, const char *bucket, const char *key,
                       ferry_mpu_record *out, int *found, ferry_error *err);

/* A new upload for bucket/key: replaces any previous record. */
ferry_rc ferry_mpu_begin(ferry_redis *r, const ferry_lease *lease, const char *bucket,
                         const char *key, const char *upload_id, uint64_t part_size,
                         uint64_t size, const char *src_etag, ferry_error *err);

/* Part part->number of upload_id is stored (its ETag and checksum, if any). A record for
 * another upload (or none) is left alone: FERRY_OK. */
ferry_rc ferry_mpu_part(ferry_redis *r, const ferry_lease *lease, const char *bucket,
                        const char *key, const char *upload_id,
                        const ferry_objstore_mpu_part *part, ferry_error *err);

/* Forgets the record of bucket/key (completed or aborted). upload_id: only if the record
 * is of this upload; NULL: whichever it is. */
ferry_rc ferry_mpu_clear(ferry_redis *r, const ferry_lease *lease, const char *bucket,
                         const char *key, const char *upload_id, ferry_error *err);

#endif
