#include "ferry_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int64_t ferry_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ferry_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ferry_sleep_ms(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (ms > 0 && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int ferry_uuid_v4(char *out, size_t size)
{
    unsigned char b[16];
    if (size < 37 || getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, size, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
             b[13], b[14], b[15]);
    return 0;
}

uint64_t ferry_fnv1a64(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

uint64_t ferry_rand_below(uint64_t n)
{
    static __thread uint64_t s;
    if (n == 0)
        return 0;
    if (s == 0 && (getrandom(&s, sizeof(s), 0) != (ssize_t)sizeof(s) || s == 0))
        s = (uint64_t)ferry_mono_ms() | 1;
    /* xorshift64*: plenty for jitter. */
    s ^= s >> 12;
    s ^= s << 25;
    s ^= s >> 27;
    return (s * 2685821657736338717ULL) % n;
}

int64_t ferry_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms)
{
    int64_t ceiling = base_ms;
    for (int i = 0; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    return (int64_t)ferry_rand_below((uint64_t)ceiling + 1);
}

char *ferry_read_small_file(const char *path, size_t max, char *errstr, size_t errstr_size)
{
    FILE *fp = fopen(path, "r");
    char *buf = NULL;
    size_t n;

    if (!fp) {
        snprintf(errstr, errstr_size, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    buf = malloc(max + 1);
    if (!buf) {
        snprintf(errstr, errstr_size, "out of memory");
        goto out;
    }
    n = fread(buf, 1, max + 1, fp);
    if (n > max) {
        snprintf(errstr, errstr_size, "%s is larger than %zu bytes", path, max);
        free(buf);
        buf = NULL;
        goto out;
    }
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = '\0';
out:
    fclose(fp);
    return buf;
}

int ferry_ct_memcmp(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (unsigned char)(x[i] ^ y[i]);
    return d;
}

const char *ferry_fmt_bytes(double bytes, char *out, size_t size)
{
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, size, u ? "%.1f %s" : "%.0f %s", bytes, units[u]);
    return out;
}
