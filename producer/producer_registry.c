/* The JSON registry source of `serve`: a file or a directory of *.json files watched with
 * inotify. On a change (debounced), the registry is re-read -- a malformed or half-written
 * file keeps its last good contents, so nothing is published from it -- and the whole
 * registry is synced like a catalog listing. A periodic full rescan catches anything
 * inotify missed (queue overflow, a directory created after startup). */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry_log.h"
#include "ferry_registry.h"
#include "ferry_util.h"
#include "producer.h"

#define WATCH_MASK                                                                             \
    (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_DELETE_SELF |   \
     IN_MOVE_SELF)

typedef struct watcher {
    int fd, wd;
    char dir[PATH_MAX];      /* the directory watched */
    char name[NAME_MAX + 1]; /* the file's name in it; "" = every *.json */
} watcher;

static int dup_strv(char ***dst, size_t *dn, char *const *src, size_t n)
{
    if (!n)
        return 0;
    if (!(*dst = calloc(n, sizeof(**dst))))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!((*dst)[i] = strdup(src[i])))
            return -1;
        (*dn)++;
    }
    return 0;
}

/* The spec part of an entry, deep-copied (sync adds the event id and catalog fields). */
static int spec_copy(ferry_onboard *d, const ferry_onboard *s)
{
    memset(d, 0, sizeof(*d));
    d->verify = s->verify;
    d->overwrite = s->overwrite;
    if (!(d->dataset = strdup(s->dataset)) || !(d->source_uri = strdup(s->source_uri)) ||
        !(d->target_uri = strdup(s->target_uri)) ||
        !(d->requested_by = strdup(s->requested_by ? s->requested_by : "registry")) ||
        (s->source_inventory && !(d->source_inventory = strdup(s->source_inventory))))
        return -1;
    if (dup_strv(&d->include_prefixes, &d->include_count, s->include_prefixes,
                 s->include_count) ||
        dup_strv(&d->exclude_prefixes, &d->exclude_count, s->exclude_prefixes,
                 s->exclude_count))
        return -1;
    return 0;
}

static ferry_rc sync_registry(producer_source *src, ferry_registry *reg, ferry_error *err)
{
    size_t n = ferry_registry_count(reg);
    producer_item *items = n ? calloc(n, sizeof(*items)) : NULL;
    ferry_onboard *specs = n ? calloc(n, sizeof(*specs)) : NULL;
    char **refs = n ? calloc(n, sizeof(*refs)) : NULL;
    producer_sync_stats st;
    ferry_rc rc;

    if (n && (!items || !specs || !refs)) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        const ferry_registry_entry *e = ferry_registry_at(reg, i);
        if (spec_copy(&specs[i], &e->spec) != 0 ||
            asprintf(&refs[i], "registry:%s", e->spec.dataset) < 0) {
            refs[i] = NULL;
            rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
            goto out;
        }
        items[i].ref = refs[i];
        items[i].spec = &specs[i];
    }
    rc = producer_sync_round(src, items, n, 1, &st, err);
    if (rc == FERRY_OK)
        ferry_debug(NULL,
                    "registry: %u datasets: %u published, %u unchanged, %u invalid, "
                    "%u removed",
                    st.items, st.published, st.unchanged, st.invalid, st.removed);
out:
    for (size_t i = 0; i < n; i++) {
        if (specs)
            ferry_onboard_clear(&specs[i]);
        if (refs)
            free(refs[i]);
    }
    free(specs);
    free(refs);
    free(items);
    return rc;
}

/* (Re)creates the inotify watch. Returns 0 if watching. */
static int watch(watcher *w, const char *path)
{
    struct stat st;

    if (w->wd >= 0) {
        inotify_rm_watch(w->fd, w->wd);
        w->wd = -1;
    }
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(w->dir, sizeof(w->dir), "%s", path);
        w->name[0] = '\0';
    } else {
        /* A single file: watch its directory, because atomic writers replace the file
         * (rename), which a watch on the file itself would not follow. */
        char a[PATH_MAX], b[PATH_MAX];
        snprintf(a, sizeof(a), "%s", path);
        snprintf(b, sizeof(b), "%s", path);
        snprintf(w->dir, sizeof(w->dir), "%s", dirname(a));
        snprintf(w->name, sizeof(w->name), "%s", basename(b));
    }
    w->wd = inotify_add_watch(w->fd, w->dir, WATCH_MASK);
    if (w->wd < 0) {
        ferry_warn(NULL, "registry: cannot watch %s: %s (rescanning periodically instead)",
                   w->dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Drains inotify; returns 1 if something relevant happened, 2 if the watch is gone. */
static int drain(watcher *w)
{
    char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
    int relevant = 0;

    for (;;) {
        ssize_t n = read(w->fd, buf, sizeof(buf));
        if (n <= 0)
            break;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *ev = (const struct inotify_event *)p;
            p += sizeof(*ev) + ev->len;
            if (ev->mask & IN_Q_OVERFLOW) { /* events were lost: reload everything */
                relevant = relevant ? relevant : 1;
                continue;
            }
            if (ev->wd != w->wd) /* e.g. IN_IGNORED of a watch we replaced */
                continue;
            if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                relevant = 2; /* the watched directory itself went away */
            else if (!relevant && ev->len && (!w->name[0] || strcmp(ev->name, w->name) == 0))
                relevant = 1;
        }
    }
    return relevant;
}

void *producer_registry_thread(void *arg)
{
    producer_ctx *ctx = arg;
    const char *path = ferry_conf_str(ctx->conf, "registry.path");
    int64_t debounce = ferry_conf_int(ctx->conf, "registry.debounce_ms");
    int64_t rescan = ferry_conf_int(ctx->conf, "registry.rescan_interval_ms");
    producer_metrics *m = producer_metrics_of(ctx->em);
    producer_source src = {"registry", FERRY_ORIGIN_REGISTRY, NULL, ctx->em};
    ferry_registry *reg = NULL;
    watcher w = {-1, -1, "", ""};
    char errstr[256];
    int64_t next_sync = 0, next_rescan;
    int failures = 0;

    if (!(reg = ferry_registry_new(path, errstr, sizeof(errstr))) ||
        !(src.changes = ferry_changes_new("registry", errstr, sizeof(errstr)))) {
        ferry_err(NULL, "registry: %s; the registry source is NOT running", errstr);
        goto out;
    }
    if ((w.fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
        ferry_err(NULL, "registry: inotify: %s; the registry source is NOT running",
                  strerror(errno));
        goto out;
    }
    watch(&w, path);
    ferry_info(NULL, "registry: watching %s", path);
    next_sync = ferry_mono_ms(); /* the initial load */
    next_rescan = next_sync + rescan;

    for (;;) {
        int64_t now = ferry_mono_ms(), timeout;
        struct pollfd pf[2] = {{w.fd, POLLIN, 0}, {ctx->stop->fds[0], POLLIN, 0}};

        if (next_sync && now >= next_sync) {
            ferry_registry_result res;
            ferry_error err = {0};
            ferry_rc rc;

            next_sync = 0;
            PRODUCER_COUNT(m->registry_reloads, 1);
            rc = ferry_registry_reload(reg, &res, &err);
            if (rc == FERRY_OK) {
                PRODUCER_COUNT(m->registry_files_rejected, res.files_rejected);
                rc = sync_registry(&src, reg, &err);
            }
            if (rc != FERRY_OK) {
                int64_t delay = ferry_backoff_ms(failures < 6 ? failures : 6, 1000, 60000) +
                                500;
                failures++;
                ferry_warn(NULL, "registry: %s; retrying in %lld ms", err.msg,
                           (long long)delay);
                next_sync = now + delay;
            } else {
                failures = 0;
            }
        }
        if (now >= next_rescan) {
            if (w.wd < 0)
                watch(&w, path);
            next_sync = next_sync ? next_sync : now;
            next_rescan = now + rescan;
            continue;
        }
        timeout = next_rescan - now;
        if (next_sync && next_sync - now < timeout)
            timeout = next_sync - now;
        if (timeout < 0)
            timeout = 0;
        if (poll(pf, 2, (int)(timeout > 60000 ? 60000 : timeout)) < 0 && errno != EINTR)
            ferry_sleep_ms(100);
        if (pf[1].revents)
            break; /* stop requested */
        if (pf[0].revents & POLLIN) {
            int r = drain(&w);
            if (r == 2)
                watch(&w, path); /* the directory was replaced or removed */
            if (r)               /* wait for a quiet moment: writers come in bursts */
                next_sync = ferry_mono_ms() + debounce;
        }
    }
out:
    if (w.fd >= 0)
        close(w.fd);
    ferry_changes_destroy(src.changes);
    ferry_registry_destroy(reg);
    return NULL;
}
