/* The sigv4 backend's multipart state machine, for a COPY above the multipart threshold
 * (HEAD source -> CreateMultipartUpload -> UploadPartCopy x N in parallel -> Complete, or
 * Abort on failure) and for every TRANSFER (whose parts, and whose single-PUT case, are
 * streams: objstore_streams.c). Its requests take slots like any other request. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "ferry_log.h"
#include "objstore/objstore_sigv4.h"

static void plan_parts(sigv4 *s, mpcopy *mp)
{
    uint64_t ps = s->mp_part_size;
    uint64_t min_for_count = (mp->size + MAX_PARTS - 1) / MAX_PARTS;

    if (ps < min_for_count)
        ps = min_for_count;
    ps = (ps + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1); /* whole MiB */
    if (ps < MIN_PART)
        ps = MIN_PART;
    if (ps > MAX_PART)
        ps = MAX_PART;
    mp->part_size = ps;
    mp->nparts = (uint32_t)((mp->size + ps - 1) / ps);
    mp->next_part = 1;
}

/* Whether op->mpu_resume can continue mp's object: an upload id we can send and a part
 * size S3 accepts for this size. Plans the parts with that size when it can. */
static int resume_fits(mpcopy *mp)
{
    const ferry_objstore_mpu *r = mp->op->mpu_resume;
    uint64_t ps = r->part_size;

    if (!r->upload_id || !*r->upload_id || strlen(r->upload_id) >= sizeof(mp->upload_id) ||
        strpbrk(r->upload_id, "\r\n") || ps < MIN_PART || ps > MAX_PART ||
        (mp->size + ps - 1) / ps > MAX_PARTS)
        return 0;
    mp->part_size = ps;
    mp->nparts = (uint32_t)((mp->size + ps - 1) / ps);
    mp->next_part = 1;
    memcpy(mp->upload_id, r->upload_id, strlen(r->upload_id) + 1);
    return 1;
}

/* Whether a resumed part carries the checksum Complete needs for it: none when the upload
 * has no algorithm, else one of that algorithm, XML-safe (it goes into the body as is). */
static int resume_checksum_ok(const mpcopy *mp, const ferry_objstore_mpu_part *p)
{
    size_t n = strnlen(p->checksum, sizeof(p->checksum));

    if (!mp->sums)
        return 1;
    return n > 0 && n < sizeof(p->checksum) &&
           !strncmp(p->checksum_algo, mp->ck_algo, sizeof(p->checksum_algo)) &&
           !strpbrk(p->checksum, "<>&\"'");
}

/* Takes the resumed upload's finished parts (those of this plan, with a usable ETag and,
 * when the upload has a checksum algorithm, the part's checksum: a part recorded without
 * it (by an earlier ferry) is copied again, as S3 refuses a Complete without it). */
static void resume_parts(mpcopy *mp)
{
    const ferry_objstore_mpu *r = mp->op->mpu_resume;
    uint32_t again = 0;

    for (size_t i = 0; i < r->nparts; i++) {
        const ferry_objstore_mpu_part *p = &r->parts[i];
        if (p->number < 1 || p->number > mp->nparts || !p->etag[0] ||
            strnlen(p->etag, sizeof(p->etag)) >= sizeof(p->etag) ||
            strpbrk(p->etag, "<>&\"'") || mp->etags[p->number - 1][0])
            continue;
        if (!resume_checksum_ok(mp, p)) {
            again++;
            continue;
        }
        memcpy(mp->etags[p->number - 1], p->etag, strlen(p->etag) + 1);
        if (mp->sums)
            memcpy(mp->sums[p->number - 1], p->checksum, sizeof(mp->sums[0]));
        mp->parts_done++;
    }
    ferry_info(NULL, "multipart copy resumed: %u of %u parts of %llu bytes already stored",
               mp->parts_done, mp->nparts, (unsigned long long)mp->part_size);
    if (again)
        ferry_warn(NULL,
                   "multipart copy resumed: %u stored parts are copied again, recorded "
                   "without their %s checksum",
                   again, mp->ck_algo);
}

/* A multipart copy keeps the source's additional checksum algorithm, as CopyObject does:
 * from the source's HEAD (x-amz-checksum-mode: ENABLED). CRC32 and CRC32C of a single-part
 * source are kept as full-object checksums (S3 combines the part CRCs), so the target's
 * checksum equals the source's and verifies the copy; CRC64NVME is always full-object;
 * SHA-1/SHA-256 and composite sources give a composite checksum ("...-N"), which only an
 * object with the same part sizes could match. */
static void keep_checksum(mpcopy *mp, const slot *sl)
{
    int full = sl->checksum[0] &&
               !ferry_objstore_checksum_composite(sl->checksum, sl->checksum_type);

    mp->ck_algo[0] = '\0';
    if (!sl->checksum_algo[0])
        return;
    if (!strcmp(sl->checksum_algo, "CRC64NVME"))
        mp->ck_type = "FULL_OBJECT";
    else if (!strcmp(sl->checksum_algo, "CRC32") || !strcmp(sl->checksum_algo, "CRC32C"))
        mp->ck_type = full ? "FULL_OBJECT" : "COMPOSITE";
    else if (!strcmp(sl->checksum_algo, "SHA1") || !strcmp(sl->checksum_algo, "SHA256"))
        mp->ck_type = "COMPOSITE";
    else
        return;
    memcpy(mp->ck_algo, sl->checksum_algo, sizeof(mp->ck_algo));
}

/* Whether the resumed upload's checksum algorithm is known. A copy's follows from its
 * source. A stream's upload has the algorithm only if it was created by a ferry that
 * sends part checksums: known from its recorded parts (with one: it has; only without:
 * an older upload, continued without, as it was begun). With no part recorded nothing is
 * lost by starting a new upload, so that is done. */
static int resume_algo_known(mpcopy *mp)
{
    const ferry_objstore_mpu *r = mp->op->mpu_resume;
    size_t with = 0;

    if (!mp->transfer || !mp->ck_algo[0])
        return 1;
    if (!r->nparts)
        return 0;
    for (size_t i = 0; i < r->nparts; i++)
        with += !strncmp(r->parts[i].checksum_algo, mp->ck_algo,
                         sizeof(r->parts[i].checksum_algo));
    if (!with) {
        ferry_info(NULL,
                   "resumed upload has no part checksums (begun by an older ferry): "
                   "continued without the %s algorithm",
                   mp->ck_algo);
        mp->ck_algo[0] = '\0';
    }
    return 1;
}

/* Tells op->mpu_progress about the upload (part 0) or a stored part; a refusal (the
 * caller lost its lease) fails the op, which aborts the upload. */
static void report_progress(mpcopy *mp, uint32_t part)
{
    ferry_objstore_op *op = mp->op;
    ferry_objstore_mpu_part p = {0};
    ferry_error err = {0};

    if (!op->mpu_progress || mp->failed)
        return;
    if (part) {
        p.number = part;
        memcpy(p.etag, mp->etags[part - 1], sizeof(p.etag));
        if (mp->sums && mp->sums[part - 1][0]) {
            memcpy(p.checksum_algo, mp->ck_algo, sizeof(p.checksum_algo));
            memcpy(p.checksum, mp->sums[part - 1], sizeof(p.checksum));
        }
    }
    if (op->mpu_progress(op, mp->upload_id, mp->part_size, part ? &p : NULL, &err) !=
        FERRY_OK) {
        op->err = err;
        op->rc = err.rc;
        objstore__mp_fail(mp);
    }
}

void objstore__mp_part_done(mpcopy *mp, uint32_t part, const char *etag)
{
    if (etag != mp->etags[part - 1])
        memcpy(mp->etags[part - 1], etag, sizeof(mp->etags[0]));
    mp->parts_done++;
    report_progress(mp, part);
}

void objstore__mp_upload_gone(mpcopy *mp)
{
    ferry_objstore_op *op = mp->op;

    if (mp->resumed && op->rc != FERRY_OK && !strcmp(op->s3_code, "NoSuchUpload")) {
        op->rc = FERRY_ERR_RETRYABLE;
        op->err.rc = FERRY_ERR_RETRYABLE;
    }
}

void objstore__mp_finish(sigv4 *s, slot *sl, ferry_objstore_op *op, enum step st, uint32_t part,
                         CURLcode cc)
{
    mpcopy *mp = op->priv_;
    ferry_s3xml_result *x = NULL;
    int first_failure = !mp->failed;

    if (st == ST_MP_PART)
        mp->parts_in_flight--;
    else
        mp->busy = 0;
    if (st == ST_MP_ABORT) {
        mp->phase = PH_DONE; /* best effort; the op keeps its first error */
        return;
    }
    if (objstore__check(s, sl, cc, op, st, part) != FERRY_OK) {
        if (first_failure && (st == ST_MP_PART || st == ST_MP_COMPLETE))
            objstore__mp_upload_gone(mp);
        objstore__mp_fail(mp);
        return;
    }
    if (mp->failed && st == ST_MP_PART)
        return; /* a sibling part failed already; this one is moot */
    x = calloc(1, sizeof(*x));
    if (!x) {
        if (first_failure)
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        objstore__mp_fail(mp);
        return;
    }
    switch (st) {
    case ST_MP_HEAD:
        if (!sl->have_clen) {
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                                   "no Content-Length in the response");
            objstore__mp_fail(mp);
            break;
        }
        mp->size = sl->clen;
        if (mp->transfer)
            memcpy(mp->src_etag, sl->etag, sizeof(mp->src_etag));
        if (mp->size > MAX_OBJECT) {
            objstore__set_op_error(op, st, part, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                   "object of %llu bytes exceeds S3's 5 TiB limit",
                                   (unsigned long long)mp->size);
            objstore__mp_fail(mp);
            break;
        }
        if (mp->size <= s->mp_threshold) {
            mp->phase = PH_SIMPLE; /* smaller than the caller said: one CopyObject */
            break;
        }
        if (!mp->transfer || s->stream_checksums)
            keep_checksum(mp, sl);
        if (op->mpu_resume && !resume_fits(mp)) {
            ferry_warn(NULL,
                       "multipart upload to resume does not fit the object (part size "
                       "%llu): starting a new one",
                       (unsigned long long)op->mpu_resume->part_size);
            plan_parts(s, mp);
        } else if (op->mpu_resume && !resume_algo_known(mp)) {
            ferry_info(NULL, "multipart upload to resume has no part recorded: starting a "
                             "new one");
            plan_parts(s, mp);
        } else if (op->mpu_resume) {
            mp->resumed = 1;
        } else {
            plan_parts(s, mp);
        }
        mp->etags = calloc(mp->nparts, sizeof(*mp->etags));
        if (mp->ck_algo[0] && !(mp->sums = calloc(mp->nparts, sizeof(*mp->sums))))
            mp->ck_algo[0] = '\0'; /* checked with the etags just below */
        if (!mp->etags || (mp->ck_algo[0] && !mp->sums)) {
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
            objstore__mp_fail(mp);
            break;
        }
        if (mp->resumed) {
            resume_parts(mp);
            mp->phase = PH_PARTS;
            break;
        }
        mp->phase = PH_INIT;
        break;
    case ST_MP_INIT:
        if (objstore__parse_result_doc(sl, op, st, part, x, 1) != FERRY_OK) {
            objstore__mp_fail(mp);
        } else if (!x->upload_id[0]) {
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                                   "no UploadId in the response");
            objstore__mp_fail(mp);
        } else {
            memcpy(mp->upload_id, x->upload_id, sizeof(mp->upload_id));
            mp->phase = PH_PARTS;
            ferry_debug(NULL, "multipart copy started: %u parts of %llu bytes", mp->nparts,
                        (unsigned long long)mp->part_size);
            report_progress(mp, 0);
        }
        break;
    case ST_MP_PART:
        if (objstore__parse_result_doc(sl, op, st, part, x, 1) != FERRY_OK) {
            objstore__mp_fail(mp);
        } else if (!x->etag[0]) {
            objstore__set_op_error(op, st, part, FERRY_ERR_RETRYABLE, FERRY_EC_S3_SERVER,
                                   "no ETag in the response");
            objstore__mp_fail(mp);
        } else {
            if (mp->sums && !strcmp(x->checksum_algo, mp->ck_algo))
                memcpy(mp->sums[part - 1], x->checksum, sizeof(mp->sums[0]));
            objstore__mp_part_done(mp, part, x->etag);
        }
        break;
    case ST_MP_COMPLETE:
        if (objstore__parse_result_doc(sl, op, st, part, x, 1) != FERRY_OK) {
            objstore__mp_fail(mp);
        } else {
            memcpy(op->etag, x->etag, sizeof(op->etag));
            op->multipart = 1;
            if (mp->transfer)
                op->size = mp->size;
            op->rc = FERRY_OK;
            op->http_status = sl->status;
            mp->phase = PH_DONE;
        }
        break;
    default: break;
    }
    free(x);
}

void objstore__mp_free(mpcopy *mp)
{
    if (!mp)
        return;
    while (mp->pipes) {
        txpipe *p = mp->pipes;
        mp->pipes = p->next;
        objstore__pipe_free(p);
    }
    free(mp->etags);
    free(mp->sums);
    objstore__buf_free(&mp->body);
    free(mp);
}

void objstore__mp_fail(mpcopy *mp) { mp->failed = 1; }

/* Next request of a multipart copy or transfer, if one can start now. ST_TX_GET stands
 * for a whole stream (two slots). */
static int mp_pick(mpcopy *mp, enum step *st)
{
    if (mp->failed) {
        if (!mp->busy && !mp->parts_in_flight && mp->upload_id[0] && mp->phase != PH_ABORT &&
            mp->phase != PH_DONE) {
            *st = ST_MP_ABORT;
            return 1;
        }
        return 0;
    }
    switch (mp->phase) {
    case PH_HEAD:
        if (!mp->busy) {
            *st = ST_MP_HEAD;
            return 1;
        }
        return 0;
    case PH_SIMPLE:
        if (!mp->busy) {
            *st = mp->transfer ? ST_TX_GET : ST_MAIN;
            return 1;
        }
        return 0;
    case PH_INIT:
        if (!mp->busy) {
            *st = ST_MP_INIT;
            return 1;
        }
        return 0;
    case PH_PARTS:
        while (mp->next_part <= mp->nparts && mp->etags[mp->next_part - 1][0])
            mp->next_part++; /* done before a resume */
        if (mp->next_part <= mp->nparts) {
            *st = mp->transfer ? ST_TX_GET : ST_MP_PART;
            return 1;
        }
        if (mp->parts_done == mp->nparts && !mp->parts_in_flight && !mp->busy) {
            *st = ST_MP_COMPLETE;
            return 1;
        }
        return 0;
    default: return 0;
    }
}

static int mp_finished(const mpcopy *mp)
{
    if (mp->busy || mp->parts_in_flight)
        return 0;
    if (mp->phase == PH_DONE)
        return 1;
    return mp->failed && (!mp->upload_id[0] || mp->phase == PH_ABORT);
}

/* Starts multipart requests and streams on free slots; completes finished ones. */
void objstore__mp_schedule(sigv4 *s)
{
    mpcopy **pp = &s->mp_active;

    while (*pp) {
        mpcopy *mp = *pp;
        ferry_objstore_op *op = mp->op;
        enum step st;

        if (mp->failed && mp->pipes)
            objstore__tx_cancel(s, mp);
        while (s->nfree && !mp_finished(mp) && mp_pick(mp, &st)) {
            slot *sl;
            uint32_t part = 0;
            if (st == ST_TX_GET) {
                if (s->nfree < 2) {
                    s->pair_wanted = 1;
                    break;
                }
                if (mp->phase == PH_PARTS) {
                    part = mp->next_part++;
                    mp->parts_in_flight++;
                } else {
                    mp->busy = 1;
                }
                if (objstore__pipe_start(s, mp, part)) {
                    if (part)
                        mp->parts_in_flight--;
                    else
                        mp->busy = 0, mp->phase = PH_DONE;
                    objstore__mp_fail(mp);
                }
                continue;
            }
            sl = objstore__take_slot(s);
            if (st == ST_MP_PART) {
                part = mp->next_part++;
                mp->parts_in_flight++;
            } else {
                mp->busy = 1;
                if (st == ST_MP_ABORT)
                    mp->phase = PH_ABORT;
                if (st == ST_MP_COMPLETE)
                    mp->phase = PH_COMPLETE;
            }
            if (objstore__start(s, sl, op, st, part)) {
                objstore__slot_release(s, sl);
                if (st == ST_MP_PART)
                    mp->parts_in_flight--;
                else
                    mp->busy = 0;
                if (st == ST_MP_ABORT || st == ST_MAIN)
                    mp->phase = PH_DONE;
                objstore__mp_fail(mp);
            }
        }
        if (mp_finished(mp)) {
            if (mp->failed && op->rc == FERRY_OK)
                op->rc = ferry_error_set(&op->err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                         "multipart copy failed");
            *pp = mp->next;
            op->priv_ = NULL;
            objstore__mp_free(mp);
            objstore__push_done(s, op);
            continue;
        }
        pp = &mp->next;
    }
}

int objstore__mp_new(sigv4 *s, ferry_objstore_op *op)
{
    mpcopy *mp = calloc(1, sizeof(*mp));

    if (!mp) {
        op->rc = ferry_error_set(&op->err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                 "out of memory");
        return -1;
    }
    mp->op = op;
    mp->phase = PH_HEAD;
    mp->size = FERRY_OBJSTORE_SIZE_UNKNOWN;
    if (op->type == FERRY_OBJSTORE_OP_TRANSFER) {
        mp->transfer = 1;
        mp->src = ferry_objstore__impl(op->src_store, &ferry_objstore_sigv4_backend);
        /* A known small size skips the HEAD: the GET's headers say the rest. */
        if (op->src_size != FERRY_OBJSTORE_SIZE_UNKNOWN && op->src_size <= s->mp_threshold) {
            mp->phase = PH_SIMPLE;
            mp->size = op->src_size;
        }
    }
    mp->next = s->mp_active;
    s->mp_active = mp;
    op->priv_ = mp;
    return 0;
}
