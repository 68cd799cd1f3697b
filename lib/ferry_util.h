/* ferry_util: small helpers with no better home. */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t ferry_now_ms(void);  /* wall clock, ms since the epoch */
int64_t ferry_mono_ms(void); /* monotonic, for durations and deadlines */
void ferry_sleep_ms(int64_t ms);
/* Random (v4) UUID text into out (>= 37 bytes). Returns 0, -1 if no randomness. */
int ferry_uuid_v4(char *out, size_t size);
/* Uniform random in [0, n) from a thread-local generator (backoff jitter, not crypto). */
uint64_t ferry_rand_below(uint64_t n);
/* Exponential backoff with full jitter: random in [0, min(cap, base * 2^attempt)]. */
int64_t ferry_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms);
/* Reads a small file (secrets, tokens) into a malloc'd string, trailing newline trimmed.
 * NULL + errstr on failure. Caller frees (and should wipe secrets). */
char *ferry_read_small_file(const char *path, size_t max, char *errstr, size_t errstr_size);
/* Constant-time comparison of equal-length secrets; 0 if equal. */
int ferry_ct_memcmp(const void *a, const void *b, size_t n);
/* FNV-1a 64 over n bytes of p, continuing from h (FERRY_FNV1A64_INIT to start): the one
 * non-cryptographic hash of stored keys, fingerprints and spec hashes. Their values are
 * stored in Redis and Kafka, so the function never changes. */
#define FERRY_FNV1A64_INIT 0xcbf29ce484222325ULL
uint64_t ferry_fnv1a64(uint64_t h, const void *p, size_t n);
/* Human-readable byte count ("12.3 MiB") into out. */
const char *ferry_fmt_bytes(double bytes, char *out, size_t size);

#endif
