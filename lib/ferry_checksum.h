/* ferry_checksum: S3's additional checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256)
 * computed over bytes as they stream, for the checksum a part upload sends after its body
 * (the aws-chunked trailer: lib/objstore/objstore_streams.c). Values are what S3 puts in
 * x-amz-checksum-<algo>: base64 of the big-endian CRC, or of the digest. */
#ifndef FERRY_CHECKSUM_H
#define FERRY_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

typedef enum ferry_checksum_algo {
    FERRY_CHECKSUM_NONE = 0,
    FERRY_CHECKSUM_CRC32,
    FERRY_CHECKSUM_CRC32C,
    FERRY_CHECKSUM_CRC64NVME,
    FERRY_CHECKSUM_SHA1,
    FERRY_CHECKSUM_SHA256
} ferry_checksum_algo;

/* base64 of the longest value (SHA-256: 32 bytes), with its NUL */
#define FERRY_CHECKSUM_B64_MAX 45

typedef struct ferry_checksum {
    ferry_checksum_algo algo;
    uint64_t crc;
    void *md; /* SHA: an EVP_MD_CTX, owned; freed by _final or _clear */
} ferry_checksum;

/* The algorithm S3 names so ("CRC32", case-insensitive), or FERRY_CHECKSUM_NONE; _n reads
 * len bytes of name. */
ferry_checksum_algo ferry_checksum_algo_parse(const char *name);
ferry_checksum_algo ferry_checksum_algo_parse_n(const char *name, size_t len);
/* S3's name of algo ("CRC32"), NULL for NONE. */
const char *ferry_checksum_algo_name(ferry_checksum_algo algo);

/* Length of the base64 value of algo (8 for a CRC32), 0 for NONE. */
size_t ferry_checksum_b64_len(ferry_checksum_algo algo);

/* Starts a checksum. 0, or -1 (NONE, or out of memory for a digest). */
int ferry_checksum_init(ferry_checksum *c, ferry_checksum_algo algo);
void ferry_checksum_update(ferry_checksum *c, const void *data, size_t len);

/* Writes the base64 value (NUL-terminated) into out and releases c. 0, or -1 (out too
 * small, or the digest failed). */
int ferry_checksum_final_b64(ferry_checksum *c, char *out, size_t size);

/* Releases c without a value (safe on a zeroed or finished one). */
void ferry_checksum_clear(ferry_checksum *c);

#endif
