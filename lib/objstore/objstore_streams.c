/* The sigv4 backend's TRANSFER streams. One stream (the whole object, or one part) is a GET
 * on the source store whose body flows through a ring buffer of transfer_buffer_bytes into
 * a PUT (or UploadPart) on the target store. Both are easy handles of the target store's
 * multi; backpressure is curl's pause: the GET's write callback pauses when the ring is
 * full, the PUT's read callback when it is empty, and the pump unpauses them once the other
 * side has moved (never from inside a callback). The PUT starts only once the GET's
 * response headers say 2xx, so a missing source never creates an object, and the PUT
 * carries the source's Content-Type and metadata. */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "objstore/objstore_sigv4.h"

/* TRANSFER GET body -> ring. Accepts the whole chunk or pauses (curl hands the same chunk
 * again after the unpause). */
size_t objstore__pipe_write(txpipe *p, const char *data, size_t len)
{
    size_t tail, first;

    if (p->count != FERRY_OBJSTORE_SIZE_UNKNOWN && p->received + len > p->count) {
        p->get_why = "the source sent more bytes than its Content-Length or range";
        return 0;
    }
    if (len > p->cap - p->len) {
        if (len > p->cap && !p->len) {
            /* A chunk larger than the whole ring (not seen with curl's 16 KiB chunks). */
            char *r = realloc(p->ring, len);
            if (!r) {
                p->get_why = "out of memory";
                return 0;
            }
            p->ring = r;
            p->cap = len;
            p->rpos = 0;
        } else {
            p->get_paused = 1;
            return CURL_WRITEFUNC_PAUSE;
        }
    }
    tail = (p->rpos + p->len) % p->cap;
    first = p->cap - tail < len ? p->cap - tail : len;
    memcpy(p->ring + tail, data, first);
    memcpy(p->ring, data + first, len - first);
    p->len += len;
    p->received += len;
    return len;
}

/* Moves up to len bytes from the ring to out; returns how many. */
static size_t ring_take(txpipe *p, char *out, size_t len)
{
    size_t n = 0;

    while (len && p->len) {
        size_t run = p->cap - p->rpos;
        if (run > p->len)
            run = p->len;
        if (run > len)
            run = len;
        memcpy(out + n, p->ring + p->rpos, run);
        p->rpos = (p->rpos + run) % p->cap;
        p->len -= run;
        n += run;
        len -= run;
    }
    p->sent += n;
    return n;
}

static unsigned hex_digits(uint64_t v)
{
    unsigned n = 1;
    while (v >>= 4)
        n++;
    return n;
}

void objstore__checksum_hname(char *out, size_t size, const char *algo)
{
    size_t i = (size_t)snprintf(out, size, "x-amz-checksum-");
    for (; i + 1 < size && *algo; algo++)
        out[i++] = (char)tolower((unsigned char)*algo);
    out[i < size ? i : size - 1] = '\0';
}

uint64_t objstore__pipe_chunked_len(uint64_t count, const char *algo)
{
    char name[OBJSTORE_CHECKSUM_HNAME_MAX];
    uint64_t full = count / TX_CHUNK, rest = count % TX_CHUNK;
    uint64_t n = full * (hex_digits(TX_CHUNK) + 2 + TX_CHUNK + 2);

    if (rest)
        n += hex_digits(rest) + 2 + rest + 2;
    objstore__checksum_hname(name, sizeof(name), algo);
    /* "0\r\n" name ":" value "\r\n" "\r\n" */
    return n + 3 + strlen(name) + 1 + ferry_checksum_b64_len(ferry_checksum_algo_parse(algo)) +
           2 + 2;
}

/* Ring -> an aws-chunked part: "<hex size>\r\n<data>\r\n" per chunk, then "0\r\n", the
 * trailer line with the part's checksum and "\r\n". */
static size_t chunked_read(txpipe *p, char *out, size_t len)
{
    size_t n = 0;

    while (n < len) {
        if (p->frame_pos < p->frame_len) {
            size_t run = p->frame_len - p->frame_pos;
            if (run > len - n)
                run = len - n;
            memcpy(out + n, p->frame + p->frame_pos, run);
            p->frame_pos += run;
            n += run;
        } else if (p->trailer_queued) {
            break; /* all sent */
        } else if (p->chunk_left) {
            size_t want = len - n < p->chunk_left ? len - n : (size_t)p->chunk_left;
            size_t got = ring_take(p, out + n, want);
            if (!got)
                break; /* waiting for the GET */
            ferry_checksum_update(&p->part_ck, out + n, got);
            n += got;
            p->chunk_left -= got;
            if (!p->chunk_left) {
                memcpy(p->frame, "\r\n", 2);
                p->frame_len = 2;
                p->frame_pos = 0;
            }
        } else if (p->sent < p->count) {
            uint64_t c = p->count - p->sent < TX_CHUNK ? p->count - p->sent : TX_CHUNK;
            p->frame_len = (size_t)snprintf(p->frame, sizeof(p->frame), "%llx\r\n",
                                            (unsigned long long)c);
            p->frame_pos = 0;
            p->chunk_left = c;
        } else {
            char name[OBJSTORE_CHECKSUM_HNAME_MAX];
            const char *algo = p->mp->ck_algo;
            int w;
            objstore__checksum_hname(name, sizeof(name), algo);
            if (ferry_checksum_final_b64(&p->part_ck, p->part_sum, sizeof(p->part_sum)))
                return CURL_READFUNC_ABORT;
            w = snprintf(p->frame, sizeof(p->frame), "0\r\n%s:%s\r\n\r\n", name, p->part_sum);
            if (w < 0 || (size_t)w >= sizeof(p->frame))
                return CURL_READFUNC_ABORT;
            p->frame_len = (size_t)w;
            p->frame_pos = 0;
            p->trailer_queued = 1;
        }
    }
    return n;
}

/* Ring -> TRANSFER PUT body. */
size_t objstore__pipe_read(txpipe *p, char *out, size_t len)
{
    size_t n;

    if (p->get_done && !p->get_ok)
        return CURL_READFUNC_ABORT;
    n = p->chunked ? chunked_read(p, out, len) : ring_take(p, out, len);
    if (n == CURL_READFUNC_ABORT || n)
        return n;
    if (p->chunked && p->trailer_queued && p->frame_pos == p->frame_len)
        return 0;    /* the trailer went out */
    if (p->get_done) /* all received and sent: a short source is an error, not an EOF */
        return !p->chunked && p->sent == p->count ? 0 : CURL_READFUNC_ABORT;
    p->put_paused = 1;
    return CURL_READFUNC_PAUSE;
}

void objstore__pipe_free(txpipe *p)
{
    if (p) {
        ferry_checksum_clear(&p->part_ck);
        free(p->ring);
        free(p);
    }
}

/* Starts stream `part` of mp's transfer (0: the whole object): its GET now, with the PUT's
 * slot reserved so that a stream never waits for a connection mid-way. Needs two free
 * slots. Returns 0, or -1 with the op's error set. */
int objstore__pipe_start(sigv4 *s, mpcopy *mp, uint32_t part)
{
    ferry_objstore_op *op = mp->op;
    txpipe *p = calloc(1, sizeof(*p));
    slot *g, *pu;

    if (p)
        p->ring = malloc(s->tx_buffer);
    if (!p || !p->ring) {
        objstore__pipe_free(p);
        if (!mp->failed)
            objstore__set_op_error(op, ST_TX_GET, part, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                   "out of memory");
        return -1;
    }
    p->mp = mp;
    p->part = part;
    p->cap = s->tx_buffer;
    if (part) {
        p->first = (uint64_t)(part - 1) * mp->part_size;
        p->count = mp->size - p->first < mp->part_size ? mp->size - p->first : mp->part_size;
        if (mp->ck_algo[0]) {
            if (ferry_checksum_init(&p->part_ck, ferry_checksum_algo_parse(mp->ck_algo))) {
                objstore__pipe_free(p);
                if (!mp->failed)
                    objstore__set_op_error(op, ST_TX_PUT, part, FERRY_ERR_RETRYABLE,
                                           FERRY_EC_INTERNAL, "cannot compute a %s checksum",
                                           mp->ck_algo);
                return -1;
            }
            p->chunked = 1;
        }
    } else {
        p->count = FERRY_OBJSTORE_SIZE_UNKNOWN; /* the GET's Content-Length says */
        /* The PUT carries the metadata the GET returns (not a HEAD's, if one ran). */
        mp->meta_len = 0;
        mp->meta_n = 0;
        mp->content_type[0] = '\0';
    }
    g = objstore__take_slot(s);
    g->pipe = p;
    if (objstore__start(s, g, op, ST_TX_GET, part)) {
        objstore__slot_release(s, g);
        objstore__pipe_free(p);
        return -1;
    }
    pu = objstore__take_slot(s);
    pu->op = op;
    pu->pipe = p;
    pu->step = ST_TX_PUT;
    pu->part = part;
    p->get = g;
    p->put = pu;
    p->next = mp->pipes;
    mp->pipes = p;
    return 0;
}

/* The GET's response headers said 2xx: learn and check how many bytes will come. */
static int pipe_headers(txpipe *p, const slot *g)
{
    mpcopy *mp = p->mp;
    ferry_objstore_op *op = mp->op;

    if (!g->have_clen) {
        if (!mp->failed)
            objstore__set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE,
                                   FERRY_EC_S3_SERVER, "%d without a Content-Length",
                                   g->status);
        return -1;
    }
    if (p->part) {
        if (g->clen != p->count) {
            if (!mp->failed)
                objstore__set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE,
                                       FERRY_EC_S3_SERVER,
                                       "%d with %llu bytes for a range of %llu", g->status,
                                       (unsigned long long)g->clen,
                                       (unsigned long long)p->count);
            return -1;
        }
        return 0;
    }
    if (mp->size != FERRY_OBJSTORE_SIZE_UNKNOWN && g->clen != mp->size) {
        if (!mp->failed)
            objstore__set_op_error(
                op, ST_TX_GET, 0, FERRY_ERR_RETRYABLE, FERRY_EC_VERIFY,
                "the source is %llu bytes now, %llu were expected (it changed)",
                (unsigned long long)g->clen, (unsigned long long)mp->size);
        return -1;
    }
    if (g->clen > MAX_PART) {
        if (!mp->failed)
            objstore__set_op_error(op, ST_TX_GET, 0, FERRY_ERR_PERMANENT, FERRY_EC_S3_CLIENT,
                                   "%llu bytes is above PutObject's 5 GiB limit",
                                   (unsigned long long)g->clen);
        return -1;
    }
    p->count = g->clen;
    /* A full-object checksum of the source goes with the PUT (build_tx_put); a composite
     * one is of parts this PUT does not have. */
    if (g->checksum_algo[0] && g->checksum[0] &&
        !ferry_objstore_checksum_composite(g->checksum, g->checksum_type) &&
        strspn(g->checksum,
               "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") ==
            strlen(g->checksum)) {
        memcpy(p->ck_algo, g->checksum_algo, sizeof(p->ck_algo));
        memcpy(p->ck, g->checksum, sizeof(p->ck));
    }
    return 0;
}

/* Ends whatever side of p can end now, and p itself once both have. */
static void pipe_settle(sigv4 *s, txpipe *p)
{
    mpcopy *mp = p->mp;
    ferry_objstore_op *op = mp->op;
    txpipe **pp;

    if (p->put_done && !p->get_done) {
        /* The PUT is over (refused, say): nobody will read the rest of the source. */
        curl_multi_remove_handle(s->multi, p->get->easy);
        objstore__slot_release(s, p->get);
        p->get = NULL;
        p->get_done = 1;
    }
    if (p->get_done && !p->get_ok && !p->put_launched && !p->put_done) {
        objstore__slot_release(s, p->put);
        p->put = NULL;
        p->put_done = 1;
    }
    if (!p->get_done || !p->put_done)
        return;
    for (pp = &mp->pipes; *pp && *pp != p; pp = &(*pp)->next)
        ;
    if (*pp)
        *pp = p->next;
    if (p->part)
        mp->parts_in_flight--;
    else
        mp->busy = 0;
    if (p->get_ok && p->put_ok && !mp->failed) {
        if (p->part) {
            objstore__mp_part_done(mp, p->part, mp->etags[p->part - 1]);
        } else {
            op->size = p->count;
            op->multipart = 0;
            op->http_status = 200;
            op->rc = FERRY_OK;
            mp->phase = PH_DONE;
        }
    } else {
        if (!mp->failed && op->rc == FERRY_OK)
            objstore__set_op_error(op, p->part ? ST_TX_PUT : ST_MAIN, p->part,
                                   FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "stream stopped");
        objstore__mp_fail(mp);
        if (!p->part)
            mp->phase = PH_DONE;
    }
    objstore__pipe_free(p);
}

/* A store without aws-chunked trailers refuses every part sent with one, in its own words
 * (501 NotImplemented, 400 InvalidArgument or InvalidRequest, or a 401/403 for a payload
 * hash it does not know). Say what would get past it. */
static void hint_trailer_refused(ferry_objstore_op *op)
{
    static const char hint[] = " (the part was sent aws-chunked with a checksum trailer; "
                               "for a store that does not take trailers set "
                               "copy.stream_checksums=false)";
    size_t n = strlen(op->err.msg);

    if (op->rc != FERRY_ERR_PERMANENT || !strcmp(op->s3_code, "BadDigest") ||
        !(op->http_status == 400 || op->http_status == 401 || op->http_status == 403 ||
          op->http_status == 501))
        return;
    if (n + sizeof(hint) > sizeof(op->err.msg))
        n = sizeof(op->err.msg) - sizeof(hint);
    memcpy(op->err.msg + n, hint, sizeof(hint));
}

/* A stream's GET or PUT finished (already removed from the multi handle). */
void objstore__pipe_slot_done(sigv4 *s, slot *sl, CURLcode cc)
{
    txpipe *p = sl->pipe;
    mpcopy *mp = p->mp;
    ferry_objstore_op *op = mp->op;

    if (sl->step == ST_TX_GET) {
        int ok = 0;
        p->get_done = 1;
        p->get = NULL;
        if (cc != CURLE_OK && p->get_why) {
            if (!mp->failed)
                objstore__set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE,
                                       FERRY_EC_S3_SERVER, "%s", p->get_why);
        } else if (objstore__check(s, sl, cc, op, ST_TX_GET, p->part) != FERRY_OK) {
            /* error set by check (unless an earlier one stands) */
        } else if (p->count == FERRY_OBJSTORE_SIZE_UNKNOWN && pipe_headers(p, sl)) {
            /* a 0-byte or tiny object can end before the pump saw its headers */
        } else if (p->received != p->count) {
            if (!mp->failed)
                objstore__set_op_error(op, ST_TX_GET, p->part, FERRY_ERR_RETRYABLE,
                                       FERRY_EC_S3_NETWORK, "got %llu of %llu bytes",
                                       (unsigned long long)p->received,
                                       (unsigned long long)p->count);
        } else {
            ok = 1;
        }
        p->get_ok = ok;
        if (!ok)
            objstore__mp_fail(mp);
    } else {
        int first_failure = !mp->failed;
        p->put_done = 1;
        p->put = NULL;
        if (objstore__check(s, sl, cc, op, ST_TX_PUT, p->part) != FERRY_OK) {
            if (first_failure && p->part)
                objstore__mp_upload_gone(mp);
            if (first_failure && p->chunked)
                hint_trailer_refused(op);
            objstore__mp_fail(mp);
        } else if (!sl->etag[0]) {
            if (!mp->failed)
                objstore__set_op_error(op, ST_TX_PUT, p->part, FERRY_ERR_RETRYABLE,
                                       FERRY_EC_S3_SERVER, "no ETag in the response");
            objstore__mp_fail(mp);
        } else if (!mp->failed) {
            p->put_ok = 1;
            if (p->part) {
                memcpy(mp->etags[p->part - 1], sl->etag, sizeof(mp->etags[0]));
                if (p->chunked && mp->sums) /* what Complete lists for the part */
                    memcpy(mp->sums[p->part - 1], p->part_sum, sizeof(p->part_sum));
            } else {
                memcpy(op->etag, sl->etag, sizeof(op->etag));
            }
        }
    }
    objstore__slot_release(s, sl);
    pipe_settle(s, p);
}

/* Stops every stream of a failed transfer at once: its result is decided, and the upload
 * can be aborted only when no part is being written. */
void objstore__tx_cancel(sigv4 *s, mpcopy *mp)
{
    while (mp->pipes) {
        txpipe *p = mp->pipes;
        if (p->get) {
            curl_multi_remove_handle(s->multi, p->get->easy);
            objstore__slot_release(s, p->get);
            p->get = NULL;
        }
        p->get_done = 1;
        if (p->put) {
            if (p->put_launched)
                curl_multi_remove_handle(s->multi, p->put->easy);
            objstore__slot_release(s, p->put);
            p->put = NULL;
        }
        p->put_done = 1;
        pipe_settle(s, p); /* unlinks and frees p */
    }
}

/* Moves streams along between transfers: starts PUTs whose GET answered, unpauses a GET
 * when its ring has room again and a PUT when data (or the end) arrived. Never called from
 * a curl callback. Returns 1 if anything changed (the caller then runs curl again). */
int objstore__tx_service(sigv4 *s)
{
    int moved = 0;
    mpcopy *mp;

    for (mp = s->mp_active; mp; mp = mp->next) {
        txpipe *p, *next;
        if (!mp->transfer)
            continue;
        for (p = mp->pipes; p; p = next) {
            slot *g = p->get;
            next = p->next;
            if (mp->failed)
                break;
            if (!p->put_launched && !p->put_done && !p->get_done && g && g->headers_done &&
                g->status >= 200 && g->status < 300 &&
                p->count == FERRY_OBJSTORE_SIZE_UNKNOWN && pipe_headers(p, g)) {
                objstore__mp_fail(mp);
                moved = 1; /* the caller's objstore__schedule() stops the streams */
                break;
            }
            if (!p->put_launched && !p->put_done &&
                ((g && g->headers_done && g->status >= 200 && g->status < 300 &&
                  p->count != FERRY_OBJSTORE_SIZE_UNKNOWN) ||
                 (p->get_done && p->get_ok))) {
                if (objstore__start(s, p->put, mp->op, ST_TX_PUT, p->part)) {
                    objstore__slot_release(s, p->put);
                    p->put = NULL;
                    p->put_done = 1;
                    objstore__mp_fail(mp);
                    pipe_settle(s, p);
                    moved = 1;
                    break;
                }
                p->put_launched = 1;
                moved = 1;
            }
            if (p->get_paused && g && p->cap - p->len >= p->cap / 2) {
                p->get_paused = 0;
                curl_easy_pause(g->easy, CURLPAUSE_CONT); /* may deliver the held chunk now */
                moved = 1;
            }
            if (p->put_paused && p->put_launched && p->put && (p->len || p->get_done)) {
                p->put_paused = 0;
                curl_easy_pause(p->put->easy, CURLPAUSE_CONT);
                moved = 1;
            }
        }
    }
    return moved;
}
