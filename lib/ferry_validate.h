/* ferry_validate: the rules an onboarding event must pass before anything acts on it.
 * Shared by every producer (so bad input is refused at the door) and by the worker (which
 * must not trust the topic: anyone with produce rights can write to it). */
#ifndef FERRY_VALIDATE_H
#define FERRY_VALIDATE_H

#include "ferry_error.h"
#include "ferry_event.h"
#include "ferry_names.h"
#include "ferry_uri.h"

/* Event id is a UUID; dataset name follows ferry_dataset_name_valid; source and target
 * parse as s3:// URIs (whether they overlap depends on the endpoints: the worker checks
 * it before copying); include/exclude prefixes are safe key
 * prefixes; source_inventory, if set, is an s3:// object (bucket and a key not ending in
 * '/'); requested_by is printable. FERRY_ERR_PERMANENT class invalid-spec with a
 * message naming the field otherwise. src/dst (may be NULL) receive the parsed URIs. */
ferry_rc ferry_onboard_validate(const ferry_onboard *ev, ferry_error *err);
ferry_rc ferry_onboard_parse_uris(const ferry_onboard *ev, ferry_uri *src, ferry_uri *dst,
                                  ferry_error *err);

/* 8-4-4-4-12 hex digits. */
int ferry_uuid_valid(const char *s);

#endif
