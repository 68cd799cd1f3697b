/* worker_copy_mpu.c: multipart uploads across a crash (DESIGN.md §9 "Multipart state"):
 * the record of an upload in Redis, its resume, and the sweep of orphaned uploads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry_log.h"
#include "ferry_util.h"
#include "worker_copy_internal.h"

/* ---- multipart resume (DESIGN.md §9 "Multipart state") ---------------------------
 * A copy in parts records its upload in Redis (ferry_mpu) as it goes, under the lease;
 * after a crash the next owner continues that upload and copies only the missing parts.
 * A finished or failed copy forgets the record: a failed one was aborted by the store. */

static ferry_rc mpu_progress(ferry_objstore_op *op, const char *upload_id, uint64_t part_size,
                             const ferry_objstore_mpu_part *part, ferry_error *err)
{
    run *r = op->mpu_opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    const char *key = r->c->items[i].dst_key;
    ferry_error we;
    ferry_rc rc;

    if (!part)
        rc = ferry_mpu_begin(r->redis, r->lease, r->dst.bucket, key, upload_id, part_size,
                             e->size, e->etag, &we);
    else
        rc = ferry_mpu_part(r->redis, r->lease, r->dst.bucket, key, upload_id, part, &we);
    if (rc == FERRY_ERR_CANCELLED) {
        /* fenced: the upload is aborted, the migration stops */
        worker_copy__note_failure(r, &we);
        *err = we;
        return rc;
    }
    if (rc != FERRY_OK) /* Redis briefly away: the copy goes on, a resume redoes more */
        ferry_warn(&r->lctx, "multipart progress of %s not recorded: %s", key, we.msg);
    return FERRY_OK;
}

/* Aborts an upload nobody will complete (best effort: the sweep catches what remains). */
static void abort_upload(run *r, const char *key, const char *upload_id)
{
    ferry_objstore_op op;

    ferry_objstore_op_init(&op, FERRY_OBJSTORE_OP_ABORT_UPLOAD);
    op.bucket = r->dst.bucket;
    op.key = key;
    op.upload_id = upload_id;
    if (ferry_objstore_exec(r->c->dst_store, &op) != FERRY_OK && op.http_status != 404)
        ferry_warn(&r->lctx, "aborting the multipart upload of %s: %s", key, op.err.msg);
}

/* Before an object above the multipart threshold is copied: continue the upload a
 * previous owner recorded, if it was of this very source version. */
void worker_copy__mpu_prepare(run *r, ferry_objstore_op *op, item *it,
                              const ferry_objstore_entry *e)
{
    ferry_error err;
    int found = 0;

    if (!r->redis || !r->lease || e->size <= r->c->mp_threshold)
        return;
    op->mpu_progress = mpu_progress;
    op->mpu_opaque = r;
    if (ferry_mpu_get(r->redis, r->lease->dataset, r->dst.bucket, it->dst_key, &it->mpu, &found,
                      &err) != FERRY_OK) {
        ferry_warn(&r->lctx, "reading the multipart record of %s: %s", it->dst_key, err.msg);
        return;
    }
    if (!found)
        return;
    if (it->mpu.size != e->size || !it->mpu.src_etag || strcmp(it->mpu.src_etag, e->etag)) {
        /* The source changed since: its parts are of no use. */
        abort_upload(r, it->dst_key, it->mpu.upload_id);
        ferry_mpu_record_clear(&it->mpu);
        return;
    }
    it->resume.upload_id = it->mpu.upload_id;
    it->resume.part_size = it->mpu.part_size;
    it->resume.parts = it->mpu.parts;
    it->resume.nparts = it->mpu.nparts;
    op->mpu_resume = &it->resume;
    ferry_info(&r->lctx, "resuming the multipart upload of %s: %zu parts already stored",
               it->dst_key, it->mpu.nparts);
}

void worker_copy__mpu_forget(run *r, const item *it)
{
    ferry_error err;
    ferry_rc rc = ferry_mpu_clear(r->redis, r->lease, r->dst.bucket, it->dst_key, NULL, &err);

    if (rc != FERRY_OK && rc != FERRY_ERR_CANCELLED)
        ferry_warn(&r->lctx, "forgetting the multipart record of %s: %s", it->dst_key, err.msg);
}

void worker_copy__sweep_first(run *r, ferry_objstore_op *op, ferry_objstore_listing *into)
{
    ferry_objstore_op_init(op, FERRY_OBJSTORE_OP_LIST_UPLOADS);
    op->bucket = r->dst.bucket;
    op->prefix = r->dst.prefix;
    op->listing = into;
}

/* At the start of a whole-dataset migration: abort the multipart uploads under the
 * target prefix that no record tracks and that are older than the lease TTL -- what a
 * worker that crashed (or a ferry before records existed) left behind. Younger ones may
 * belong to a previous owner still finishing a part; uploads of unknown age are kept. */
void worker_copy__sweep_orphans(run *r, const ferry_objstore_listing *first)
{
    worker_copier *c = r->c;
    int64_t cutoff = (int64_t)time(NULL) * 1000 - r->lease->ttl_ms;
    char *marker = NULL;
    int aborted = 0;

    do {
        const ferry_objstore_listing *l = first;
        if (!l) {
            ferry_objstore_op op;
            /* c->ahead is idle before the first page; c->listing may hold it */
            worker_copy__sweep_first(r, &op, &c->ahead);
            op.continuation_token = marker;
            ferry_objstore_exec(c->dst_store, &op);
            if (op.rc != FERRY_OK) {
                ferry_debug(&r->lctx, "no sweep of multipart uploads: %s", op.err.msg);
                free(marker);
                return;
            }
            l = &c->ahead;
        }
        first = NULL;
        free(marker);
        marker = NULL;
        for (size_t i = 0; i < l->count; i++) {
            const ferry_objstore_entry *e = &l->entries[i];
            ferry_mpu_record rec;
            ferry_error err;
            int found = 0;
            if (!e->upload_id || !e->last_modified_ms || e->last_modified_ms > cutoff)
                continue;
            if (ferry_mpu_get(r->redis, r->lease->dataset, r->dst.bucket, e->key, &rec, &found,
                              &err) != FERRY_OK)
                return; /* Redis away: sweep next time */
            found = found && !strcmp(rec.upload_id, e->upload_id);
            ferry_mpu_record_clear(&rec);
            if (found)
                continue; /* a resume continues it */
            abort_upload(r, e->key, e->upload_id);
            aborted++;
        }
        if (l->is_truncated && l->next_token && !(marker = strdup(l->next_token)))
            return;
    } while (marker);
    if (aborted)
        ferry_info(&r->lctx, "aborted %d orphaned multipart upload(s) under %s", aborted,
                   r->ev->target_uri);
}
