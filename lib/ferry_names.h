/* ferry_names: the rule for dataset names, shared by producer, worker and replayer.
 * A dataset name becomes a Kafka message key and part of Redis keys, so it stays small
 * and boring. Pure function; any thread. */
#ifndef FERRY_NAMES_H
#define FERRY_NAMES_H

#include <stddef.h>

#define FERRY_DATASET_NAME_MAX 63

/* ^[a-z0-9][a-z0-9._-]{0,62}$ -- returns 1 if name follows it, else 0 and a sentence
 * saying why in why (if non-NULL). */
int ferry_dataset_name_valid(const char *name, char *why, size_t why_size);

#endif
