/* objstore_internal.h: the object store's backend interface, shared by ferry_objstore.c,
 * the backends in lib/objstore/ and ferry_s3xml.c (and unit tests) only; programs include
 * ferry_objstore.h, never this. Internal functions carry the prefix ferry_objstore__.
 * One place for the op bookkeeping every backend needs, so that the submit/pump/
 * cancel_queued contract of ferry_objstore.h holds alike for all of them. */
#ifndef FERRY_OBJSTORE_INTERNAL_H
#define FERRY_OBJSTORE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "ferry_objstore.h"

/* ---- backend interface
 * A backend implements submit/pump/cancel_queued; the blocking helpers and run_batch of
 * ferry_objstore.h are built on them in ferry_objstore.c. A backend completes an op by
 * filling its result and calling op->done from inside pump. */

typedef struct ferry_objstore_backend {
    const char *name;
    void *(*create)(const ferry_objstore_conf *conf, ferry_error *err);
    void (*destroy)(void *impl);
    void (*submit)(void *impl, ferry_objstore_op *op);
    size_t (*pump)(void *impl, int timeout_ms);
    void (*cancel_queued)(void *impl);
    /* Why the backend cannot address key faithfully, or NULL (NULL hook: every key). */
    const char *(*key_refused)(const char *key);
} ferry_objstore_backend;

extern const ferry_objstore_backend ferry_objstore_sigv4_backend;
extern const ferry_objstore_backend ferry_objstore_libs3_backend;

/* The backend state of os if os uses backend be, else NULL (TRANSFER reads its source
 * store's settings this way). */
void *ferry_objstore__impl(ferry_objstore *os, const ferry_objstore_backend *be);

/* Filling a listing from a backend: begin (forget the previous page, keep the buffers),
 * add each entry in key order (copies key and etag; 0, or -1 when out of memory), end.
 * end() drops "dir/" entries without an ETag (directories of file-system backed servers,
 * counted in skipped_dirs) and sets next_token (see ferry_objstore__listing_seal); 0, or
 * -1 when out of memory. */
void ferry_objstore__listing_begin(ferry_objstore_listing *l);
int ferry_objstore__listing_add(ferry_objstore_listing *l, const char *key, size_t key_len,
                                uint64_t size, const char *etag, int64_t last_modified_ms);
int ferry_objstore__listing_end(ferry_objstore_listing *l, int is_truncated);
/* A common prefix of a delimiter listing, added after the page's objects: 0, or -1 when
 * out of memory. */
int ferry_objstore__listing_add_prefix(ferry_objstore_listing *l, const char *prefix,
                                       size_t len);
/* The last step of an object listing page whose entries hold arena offsets: points each
 * entry's key and etag (etag_off_ SIZE_MAX or NO_ETAG: "") into the arena and, when
 * l->is_truncated, sets next_token from last_key_off (the page's last object key, skipped
 * directories included; SIZE_MAX if none) and the last common prefix. 0, or -1 when out
 * of memory. */
int ferry_objstore__listing_seal(ferry_objstore_listing *l, size_t last_key_off);

/* A FIFO of ops linked through op->next_. Zero-initialized is empty. */
typedef struct ferry_objstore_opq {
    ferry_objstore_op *head, *tail;
} ferry_objstore_opq;

/* A backend's ops between submit and their done callback: queued (not started yet), done
 * (finished, callback due at the next pump) and how many are submitted but undelivered
 * (pump's return value). Ops that run sit in neither queue: the backend tracks them. */
typedef struct ferry_objstore_opqs {
    ferry_objstore_opq queued;
    ferry_objstore_opq done;
    size_t pending;
} ferry_objstore_opqs;

void ferry_objstore__opq_push(ferry_objstore_opq *q, ferry_objstore_op *op);
/* The oldest op (its next_ cleared), or NULL when q is empty. */
ferry_objstore_op *ferry_objstore__opq_pop(ferry_objstore_opq *q);

/* submit's first step: clears op's results and counts it as pending. The backend then
 * either queues it (queued) or fails it at once (done). */
void ferry_objstore__opqs_accept(ferry_objstore_opqs *qs, ferry_objstore_op *op);
/* Runs the done callbacks of finished ops, oldest first; a callback may submit more. */
void ferry_objstore__opqs_deliver(ferry_objstore_opqs *qs);
/* cancel_queued: moves every queued op to done with FERRY_ERR_CANCELLED, its message
 * naming the request as op_name(op) does ("CopyObject: not started: cancelled"). */
void ferry_objstore__opqs_cancel_queued(ferry_objstore_opqs *qs,
                                        const char *(*op_name)(const ferry_objstore_op *op));

/* ---- helpers the backends share, so that they validate and word messages alike */

/* Printable, bounded rendering of bucket/key for messages: control bytes become '?', long
 * keys are cut (on a UTF-8 boundary) with "...". key may be NULL (bucket only). */
void ferry_objstore__show(char *out, size_t size, const char *bucket, const char *key);
/* Makes server text printable in place for a message: control bytes become spaces. */
void ferry_objstore__clean_text(char *s);
/* Wipes a credential before freeing it; accepts NULL. */
void ferry_objstore__wipe_free(char *s);
/* 1 if b is a bucket name we can put in a request: 1..255 bytes, no spaces, control bytes
 * or '/'. */
int ferry_objstore__bucket_ok(const char *b);
/* Why a LIST or LIST_UPLOADS op cannot be sent (bucket, listing, max_keys, lengths), or
 * NULL if it can. */
const char *ferry_objstore__list_args_bad(const ferry_objstore_op *op);

/* ---- listings (also filled by ferry_s3xml) */

/* Appends s (len bytes + NUL) to l's arena; returns its offset or SIZE_MAX when out of
 * memory. Entries keep offsets until the page is finished: the arena may move while it
 * grows. */
size_t ferry_objstore__listing_arena_add(ferry_objstore_listing *l, const char *s, size_t len);
/* Makes room for one more entry in l->entries: 0, or -1 when out of memory. */
int ferry_objstore__listing_reserve(ferry_objstore_listing *l);

#endif
