/* worker_copy_verify.c: what a finished request of a page means for its object -- copied,
 * to verify (by checksum, MD5 ETag or size), identical already, failed on its own or for the
 * page -- and how a copy is verified (docs/operations.md, "How copies are verified"). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ferry_log.h"
#include "ferry_util.h"
#include "worker_copy_internal.h"
#include "worker_health.h"
#include "worker_metrics.h"

static const char *const verify_names[] = {"etag-md5",          "size",
                                           "checksum-crc32",    "checksum-crc32c",
                                           "checksum-sha1",     "checksum-sha256",
                                           "checksum-crc64nvme"};

/* "checksum-crc32c,etag-md5" from a VERIFY_* set. */
void worker_copy__verify_text(unsigned set, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(verify_names) / sizeof(verify_names[0]); i++)
        if (set & (1u << i))
            o += (size_t)snprintf(out + o, o < size ? size - o : 0, "%s%s", o ? "," : "",
                                  verify_names[i]);
}

int worker_copy__etag_comparable(const char *etag)
{
    return etag[0] && !strchr(etag, '-'); /* "...-N" is a multipart ETag, not an MD5 */
}

/* Feeds a finished op to the circuit breaker of the endpoint it talked to. A TRANSFER
 * talks to both: an answer counts for both, a failure for the side that failed. */
static void note_endpoint(run *r, const ferry_objstore_op *op)
{
    worker_copier *c = r->c;
    ferry_breaker *b = c->dst_brk;

    if (op->type == FERRY_OBJSTORE_OP_TRANSFER && c->src_brk != c->dst_brk) {
        if (op->rc == FERRY_OK)
            worker_health_note(c->src_brk, op->rc, &op->err, op->s3_code, &r->lctx);
        else if (op->src_failed)
            b = c->src_brk;
    }
    worker_health_note(b, op->rc, &op->err, op->s3_code, &r->lctx);
}

/* With SSE-KMS (and DSSE-KMS) or a customer key the ETag is not the MD5 of the data, and
 * a copy gets a new one (AWS: "Objects encrypted by SSE-C or SSE-KMS have ETags that are
 * not an MD5 digest"). SSE-S3 (AES256) ETags are MD5s. */
static int sse_hides_md5(const char *sse)
{
    return strncmp(sse, "aws:kms", 7) == 0 || strcmp(sse, "SSE-C") == 0;
}

static unsigned checksum_method(const char *algo)
{
    static const struct {
        const char *name;
        unsigned bit;
    } m[] = {{"CRC32", VERIFY_CRC32},
             {"CRC32C", VERIFY_CRC32C},
             {"SHA1", VERIFY_SHA1},
             {"SHA256", VERIFY_SHA256},
             {"CRC64NVME", VERIFY_CRC64NVME}};
    for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++)
        if (strcmp(algo, m[i].name) == 0)
            return m[i].bit;
    return 0;
}

/* Whether a HEAD's checksum is composite (ferry_objstore_checksum_composite), or SHA-1/
 * SHA-256 of a multipart object (S3 keeps full-object checksums only for CRCs). A full-
 * object and a composite checksum of the same bytes differ: they are not compared. */
static int checksum_composite(const ferry_objstore_op *op)
{
    return ferry_objstore_checksum_composite(op->checksum, op->checksum_type) ||
           (strchr(op->etag, '-') && !strncmp(op->checksum_algo, "SHA", 3));
}

/* Copy completion, on this thread, in completion order. */
void worker_copy__copy_done(ferry_objstore_op *op, void *opaque)
{
    run *r = opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    item *it = &r->c->items[i];

    if (op->rc == FERRY_ERR_CANCELLED)
        return; /* never started (or lost the lease): stays TODO, its record stays */
    if (r->c->test_unsettle_key && !r->c->test_unsettled &&
        !strcmp(e->key, r->c->test_unsettle_key)) {
        r->c->test_unsettled = 1;
        ferry_warn(&r->lctx, "test hook: dropping the completion of %s", e->key);
        return;
    }
    note_endpoint(r, op);
    if (op->mpu_progress)
        worker_copy__mpu_forget(r, it);
    if (op->rc == FERRY_ERR_RETRYABLE && op->http_status != 412) {
        it->state = ITEM_RETRY;
        r->retry_pending = 1;
        r->retry_err = op->err;
        return;
    }
    if (op->rc != FERRY_OK) {
        ferry_error e412;
        it->state = ITEM_FAILED;
        if (op->http_status == 412) {
            /* x-amz-copy-source-if-match refused: the source changed since it was
             * listed. Listing again picks up the new version. */
            ferry_error_set(&e412, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                            "%s changed during the migration (ETag no longer %s)", e->key,
                            e->etag);
            worker_copy__note_failure(r, &e412);
        } else {
            const char *cls;
            ferry_objstore_scope scope = ferry_objstore_object_scope(op->rc, op->http_status,
                                                                     op->s3_code, op->err.msg,
                                                                     &cls);
            if (scope == FERRY_SCOPE_OBJECT || scope == FERRY_SCOPE_VANISHED) {
                worker_copy__object_failed(r, i, scope == FERRY_SCOPE_VANISHED, cls,
                                           op->err.msg);
                worker_copy__advance(r);
                return;
            }
            worker_copy__note_failure(r, &op->err);
        }
        return;
    }
    r->prog->objects_copied++;
    ferry_debug(&r->lctx, "copied %s -> %s", e->key, it->dst_key);
    if (!r->ev->verify) {
        it->state = ITEM_COPIED;
    } else if (worker_copy__etag_comparable(e->etag) && !op->multipart &&
               !sse_hides_md5(op->sse) && strcmp(op->etag, e->etag) == 0) {
        it->state = ITEM_COPIED; /* equal MD5 ETags: the bytes are the source's */
        r->verified |= VERIFY_ETAG_MD5;
    } else {
        /* Different or incomparable ETags (multipart, SSE-KMS/SSE-C on either side, a
         * source changed under the copy): the HEADs of both sides decide, never the ETag
         * alone. */
        it->state = ITEM_VERIFY;
    }
    if (it->state == ITEM_COPIED)
        worker_copy__count_copied(it, e);
    worker_copy__advance(r);
    if (r->c->checkpoint_interval_ms &&
        ferry_mono_ms() - r->last_checkpoint_ms >= r->c->checkpoint_interval_ms) {
        ferry_error ce;
        ferry_rc rc = worker_copy__write_checkpoint(r, &ce);
        if (rc == FERRY_ERR_CANCELLED)
            worker_copy__note_failure(r, &ce); /* fenced: stop now */
        /* Other checkpoint failures (Redis briefly down) are retried at the page end. */
    }
}

/* Decides a copy whose ETags did not settle it, from the target's HEAD and what the
 * source's HEAD left in the item. Strongest evidence first: an additional checksum both
 * sides have (same algorithm, both full-object or both composite), then MD5 ETags where
 * both are MD5s, else the size. Any mismatch fails the object (retryable: it is copied
 * again); a size difference always does. */
static void verify_target(run *r, item *it, const ferry_objstore_entry *e,
                          const ferry_objstore_op *op, int missing)
{
    ferry_error ve;
    int dst_md5 = worker_copy__etag_comparable(op->etag) && !sse_hides_md5(op->sse);

    if (missing || op->size != e->size) {
        ferry_error_set(&ve, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                        "%s: target size %llu differs from source size %llu", e->key,
                        missing ? 0ULL : (unsigned long long)op->size,
                        (unsigned long long)e->size);
        goto mismatch;
    }
    if (it->src_algo[0] && strcmp(it->src_algo, op->checksum_algo) == 0 &&
        checksum_method(op->checksum_algo) && it->src_composite == checksum_composite(op)) {
        if (strcmp(it->src_sum, op->checksum) != 0) {
            if (it->src_composite) /* composite: part sizes may differ; go on */
                goto weaker;
            ferry_error_set(&ve, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                            "%s: target %s checksum %s differs from the source's %s", e->key,
                            op->checksum_algo, op->checksum, it->src_sum);
            goto mismatch;
        }
        r->verified |= checksum_method(op->checksum_algo);
        goto ok;
    }
weaker:
    if (it->src_etag_md5 && dst_md5) {
        if (strcmp(op->etag, e->etag) != 0) {
            ferry_error_set(&ve, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                            "%s: target ETag %s differs from source ETag %s", e->key, op->etag,
                            e->etag);
            goto mismatch;
        }
        r->verified |= VERIFY_ETAG_MD5;
        goto ok;
    }
    r->verified |= VERIFY_SIZE; /* all the store guarantees for this object */
ok:
    it->state = ITEM_COPIED;
    worker_copy__count_copied(it, e);
    return;
mismatch:
    it->state = ITEM_FAILED;
    worker_copy__note_failure(r, &ve);
}

/* The source's HEAD of a copy to verify: notes its checksum and whether its ETag is an
 * MD5; a source whose ETag is no longer the listed one changed under the copy. */
void worker_copy__head_src_done(ferry_objstore_op *op, void *opaque)
{
    run *r = opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    item *it = &r->c->items[i];

    if (op->rc == FERRY_ERR_CANCELLED)
        return;
    if (op->rc == FERRY_ERR_RETRYABLE) {
        r->retry_pending = 1; /* stays ITEM_VERIFY: asked again */
        r->retry_err = op->err;
        return;
    }
    if (op->rc != FERRY_OK && op->http_status != 404) {
        worker_copy__note_failure(r, &op->err); /* e.g. 403 on the source's HEAD */
        return;
    }
    if (op->rc != FERRY_OK || (e->etag[0] && strcmp(op->etag, e->etag) != 0)) {
        ferry_error ve;
        /* Gone or replaced since it was listed: retrying lists and copies it anew. */
        ferry_error_set(&ve, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                        "%s changed during the migration (ETag %s, listed %s)", e->key,
                        op->rc == FERRY_OK ? op->etag : "gone", e->etag);
        it->state = ITEM_FAILED;
        worker_copy__note_failure(r, &ve);
        return;
    }
    it->src_etag_md5 = worker_copy__etag_comparable(op->etag) && !sse_hides_md5(op->sse);
    memcpy(it->src_algo, op->checksum_algo, sizeof(it->src_algo));
    memcpy(it->src_sum, op->checksum, sizeof(it->src_sum));
    it->src_composite = checksum_composite(op);
    it->state = ITEM_VERIFY_DST;
}

/* ferry's own finished copy from before a restart, where ETags cannot tell (a multipart
 * ETag on either side, issue 13.3): same size, and written since this migration started.
 * That is the check a multipart copy gets anyway (size), and S3 writes are atomic, so it
 * is a complete object. */
static int own_copy(const run *r, const ferry_objstore_entry *e, const ferry_objstore_op *op)
{
    if (worker_copy__etag_comparable(e->etag) && worker_copy__etag_comparable(op->etag))
        return 0; /* both MD5s, and they differ */
    return op->size == e->size && r->prog->started_at_ms > 0 && op->last_modified_ms > 0 &&
           op->last_modified_ms >= r->prog->started_at_ms - OWN_COPY_SKEW_MS;
}

/* Target HEAD before copying (resume window, overwrite=never) or after (verification). */
void worker_copy__head_done(ferry_objstore_op *op, void *opaque)
{
    run *r = opaque;
    size_t i = (size_t)(uintptr_t)op->user;
    const ferry_objstore_entry *e = &r->c->listing.entries[i];
    item *it = &r->c->items[i];
    int missing = op->rc == FERRY_ERR_PERMANENT && op->http_status == 404;

    if (op->rc == FERRY_ERR_CANCELLED)
        return;
    note_endpoint(r, op);
    if (op->rc == FERRY_ERR_RETRYABLE) {
        /* A verify HEAD is asked again; a pre-copy check is only an optimisation, so the
         * object is simply copied. */
        if (it->state == ITEM_VERIFY_DST) {
            r->retry_pending = 1;
            r->retry_err = op->err;
        }
        return;
    }
    if (op->rc != FERRY_OK && !missing) {
        worker_copy__note_failure(r, &op->err);
        return;
    }
    if (it->state == ITEM_VERIFY_DST) {
        verify_target(r, it, e, op, missing);
        return;
    }
    /* Pre-copy check of an item still TODO. */
    if (missing)
        return;
    if (op->size == e->size && worker_copy__etag_comparable(e->etag) &&
        strcmp(op->etag, e->etag) == 0) {
        it->state = ITEM_SKIPPED;
        r->prog->objects_skipped++;
        ferry_debug(&r->lctx, "identical at the target, not copying %s", e->key);
    } else if (own_copy(r, e, op)) {
        it->state = ITEM_SKIPPED;
        r->prog->objects_skipped++;
        ferry_debug(&r->lctx, "copied by this migration before it was resumed: %s", e->key);
    } else if (r->ev->overwrite == FERRY_OVERWRITE_NEVER) {
        ferry_error ve;
        ferry_error_set(&ve, FERRY_ERR_PERMANENT, FERRY_EC_VALIDATION,
                        "target object %s exists and differs from the source, and the "
                        "overwrite policy is never",
                        it->dst_key);
        it->state = ITEM_FAILED;
        worker_copy__note_failure(r, &ve);
    }
}
