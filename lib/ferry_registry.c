#include "ferry_registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ferry_event_json.h"
#include "ferry_http.h"
#include "ferry_log.h"
#include "ferry_util.h"
#include "ferry_validate.h"

/* One file's last good contents. */
typedef struct reg_file {
    char *path;
    ferry_onboard *specs; /* last good; NULL/0 if it never parsed */
    size_t n;
    uint64_t good_hash; /* content hash of the last good version (has_good) */
    uint64_t bad_hash;  /* ... of the last rejected version (has_bad): reported once */
    int has_good, has_bad;
    int seen; /* mark for the current reload */
} reg_file;

struct ferry_registry {
    char *path;
    reg_file *files;
    size_t n_files;
    ferry_registry_entry *entries; /* merged view, sorted by dataset */
    size_t n_entries;
};

static void free_specs(ferry_onboard *specs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ferry_onboard_clear(&specs[i]);
    free(specs);
}

ferry_rc ferry_registry_parse(const char *text, size_t len, ferry_onboard **out, size_t *n,
                              ferry_error *err)
{
    /* ferry_onboard_validate wants an event id; a registry entry has none yet. */
    char nil_id[] = "00000000-0000-0000-0000-000000000000";
    json_error_t jerr;
    json_t *root = NULL;
    const json_t *datasets = NULL, *v;
    const char *key;
    ferry_onboard *specs = NULL;
    size_t count = 0, i;
    ferry_rc rc = FERRY_OK;

    *out = NULL;
    *n = 0;
    if (ferry_http_json_depth(text, len, FERRY_REGISTRY_MAX_DEPTH) > FERRY_REGISTRY_MAX_DEPTH)
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "JSON nested deeper than %d levels", FERRY_REGISTRY_MAX_DEPTH);
    if (!(root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)))
        return ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                               "line %d column %d: %s", jerr.line, jerr.column, jerr.text);
    if (!json_is_object(root)) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                             "the file must hold a JSON object with a \"datasets\" array");
        goto out;
    }
    json_object_foreach(root, key, v)
    {
        if (strcmp(key, "datasets") == 0) {
            datasets = v;
        } else if (strcmp(key, "version") == 0) {
            if (!json_is_integer(v) || json_integer_value(v) != 1) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                     "\"version\" must be 1");
                goto out;
            }
        } else {
            rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                 "unknown top-level field \"%.64s\"", key);
            goto out;
        }
    }
    if (!json_is_array(datasets)) {
        rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                             "missing \"datasets\" array");
        goto out;
    }
    if (json_array_size(datasets) &&
        !(specs = calloc(json_array_size(datasets), sizeof(*specs)))) {
        rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
        goto out;
    }
    json_array_foreach(datasets, i, v)
    {
        ferry_onboard *s = &specs[count++];
        if ((rc = ferry_event_json_onboard(v, 0, s, err)) != FERRY_OK) {
            ferry_error_prefix(err, "datasets[%zu]", i);
            goto out;
        }
        s->event_id = nil_id;
        rc = ferry_onboard_validate(s, err);
        s->event_id = NULL;
        if (rc != FERRY_OK) {
            ferry_error_prefix(err, "datasets[%zu] (%s)", i, s->dataset);
            goto out;
        }
        for (size_t j = 0; j + 1 < count; j++)
            if (strcmp(specs[j].dataset, s->dataset) == 0) {
                rc = ferry_error_set(err, FERRY_ERR_PERMANENT, FERRY_EC_INVALID_SPEC,
                                     "datasets[%zu]: dataset %s is defined twice", i,
                                     s->dataset);
                goto out;
            }
    }
    *out = specs;
    *n = count;
    specs = NULL; /* handed off */
    count = 0;
out:
    free_specs(specs, count);
    json_decref(root);
    return rc;
}

ferry_registry *ferry_registry_new(const char *path, char *errstr, size_t errstr_size)
{
    ferry_registry *reg = calloc(1, sizeof(*reg));

    if (!reg || !path || !*path || !(reg->path = strdup(path))) {
        snprintf(errstr, errstr_size, path && *path ? "out of memory" : "empty registry path");
        free(reg);
        return NULL;
    }
    return reg;
}

void ferry_registry_destroy(ferry_registry *reg)
{
    if (!reg)
        return;
    for (size_t i = 0; i < reg->n_files; i++) {
        free(reg->files[i].path);
        free_specs(reg->files[i].specs, reg->files[i].n);
    }
    free(reg->files);
    free(reg->entries);
    free(reg->path);
    free(reg);
}

const char *ferry_registry_path(const ferry_registry *reg) { return reg->path; }
size_t ferry_registry_count(const ferry_registry *reg) { return reg->n_entries; }

const ferry_registry_entry *ferry_registry_at(const ferry_registry *reg, size_t i)
{
    return i < reg->n_entries ? &reg->entries[i] : NULL;
}

/* Reads a whole file, at most FERRY_REGISTRY_MAX_FILE_BYTES. */
static char *read_file(const char *path, size_t *len, char *errstr, size_t errstr_size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf = NULL;
    size_t n = 0;
    struct stat st;

    if (fd < 0) {
        snprintf(errstr, errstr_size, "%s", strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(errstr, errstr_size, "not a regular file");
        goto fail;
    }
    if (!(buf = malloc(FERRY_REGISTRY_MAX_FILE_BYTES + 1))) {
        snprintf(errstr, errstr_size, "out of memory");
        goto fail;
    }
    for (;;) {
        ssize_t r = read(fd, buf + n, FERRY_REGISTRY_MAX_FILE_BYTES + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(errstr, errstr_size, "%s", strerror(errno));
            goto fail;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n > FERRY_REGISTRY_MAX_FILE_BYTES) {
            snprintf(errstr, errstr_size, "larger than %d bytes",
                     FERRY_REGISTRY_MAX_FILE_BYTES);
            goto fail;
        }
    }
    close(fd);
    buf[n] = '\0';
    *len = n;
    return buf;
fail:
    free(buf);
    close(fd);
    return NULL;
}

static reg_file *find_or_add(ferry_registry *reg, const char *path)
{
    reg_file *n;

    for (size_t i = 0; i < reg->n_files; i++)
        if (strcmp(reg->files[i].path, path) == 0)
            return &reg->files[i];
    n = realloc(reg->files, (reg->n_files + 1) * sizeof(*n));
    if (!n)
        return NULL;
    reg->files = n;
    n = &reg->files[reg->n_files];
    memset(n, 0, sizeof(*n));
    if (!(n->path = strdup(path)))
        return NULL;
    reg->n_files++;
    return n;
}

static void load_one(ferry_registry *reg, const char *path, ferry_registry_result *res)
{
    reg_file *f = find_or_add(reg, path);
    char why[256];
    char *text;
    size_t len = 0, n;
    uint64_t h;
    ferry_onboard *specs;
    ferry_error err = {0};

    if (!f) {
        ferry_err(NULL, "registry: out of memory reading %s", path);
        return;
    }
    f->seen = 1;
    res->files++;
    if (!(text = read_file(path, &len, why, sizeof(why)))) {
        /* Vanished between readdir and open, or unreadable: keep the last good state. */
        res->files_rejected++;
        ferry_warn(NULL, "registry: cannot read %s (%s); keeping its last good contents", path,
                   why);
        return;
    }
    h = ferry_fnv1a64(FERRY_FNV1A64_INIT, text, len);
    if ((f->has_good && h == f->good_hash) || (f->has_bad && h == f->bad_hash)) {
        free(text); /* nothing new since the last read */
        return;
    }
    if (ferry_registry_parse(text, len, &specs, &n, &err) != FERRY_OK) {
        res->files_rejected++;
        ferry_warn(NULL,
                   "registry: %s rejected, nothing published from it; keeping its last good "
                   "contents (%zu datasets): %s",
                   path, f->n, err.msg);
        f->bad_hash = h;
        f->has_bad = 1;
        free(text);
        return;
    }
    free(text);
    free_specs(f->specs, f->n);
    f->specs = specs;
    f->n = n;
    f->good_hash = h;
    f->has_good = 1;
    f->has_bad = 0;
    res->files_changed++;
    ferry_info(NULL, "registry: loaded %s (%zu datasets)", path, n);
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_entry(const void *a, const void *b)
{
    const ferry_registry_entry *x = a, *y = b;
    int c = strcmp(x->spec.dataset, y->spec.dataset);
    return c ? c : strcmp(x->file, y->file);
}

static int wanted_name(const char *name)
{
    size_t n = strlen(name);
    return name[0] != '.' && n > 5 && strcmp(name + n - 5, ".json") == 0;
}

/* Rebuilds the merged, sorted view; the first file (by path) wins a duplicate dataset. */
static ferry_rc merge(ferry_registry *reg, ferry_registry_result *res, ferry_error *err)
{
    size_t total = 0, k = 0, out = 0;
    ferry_registry_entry *all;

    for (size_t i = 0; i < reg->n_files; i++)
        total += reg->files[i].n;
    all = calloc(total ? total : 1, sizeof(*all));
    if (!all)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL, "out of memory");
    for (size_t i = 0; i < reg->n_files; i++)
        for (size_t j = 0; j < reg->files[i].n; j++) {
            all[k].file = reg->files[i].path;
            all[k].spec = reg->files[i].specs[j]; /* shallow: owned by the file */
            k++;
        }
    qsort(all, total, sizeof(*all), cmp_entry);
    for (size_t i = 0; i < total; i++) {
        if (out && strcmp(all[out - 1].spec.dataset, all[i].spec.dataset) == 0) {
            res->duplicates++;
            ferry_warn(NULL, "registry: dataset %s is defined in %s and in %s; using %s",
                       all[i].spec.dataset, all[out - 1].file, all[i].file, all[out - 1].file);
            continue;
        }
        all[out++] = all[i];
    }
    free(reg->entries);
    reg->entries = all;
    reg->n_entries = out;
    return FERRY_OK;
}

ferry_rc ferry_registry_reload(ferry_registry *reg, ferry_registry_result *res,
                               ferry_error *err)
{
    struct stat st;
    char **names = NULL;
    size_t n_names = 0;
    ferry_rc rc = FERRY_OK;

    memset(res, 0, sizeof(*res));
    if (stat(reg->path, &st) != 0)
        return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_CONFIG, "registry %s: %s",
                               reg->path, strerror(errno));
    for (size_t i = 0; i < reg->n_files; i++)
        reg->files[i].seen = 0;

    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(reg->path);
        struct dirent *de;
        if (!d)
            return ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_CONFIG, "registry %s: %s",
                                   reg->path, strerror(errno));
        while ((de = readdir(d))) {
            char **nn;
            if (!wanted_name(de->d_name))
                continue;
            nn = realloc(names, (n_names + 1) * sizeof(*nn));
            if (!nn || asprintf(&nn[n_names], "%s/%s", reg->path, de->d_name) < 0) {
                names = nn ? nn : names;
                closedir(d);
                rc = ferry_error_set(err, FERRY_ERR_RETRYABLE, FERRY_EC_INTERNAL,
                                     "out of memory");
                goto out;
            }
            names = nn;
            n_names++;
        }
        closedir(d);
        if (n_names)
            qsort(names, n_names, sizeof(*names), cmp_name);
        for (size_t i = 0; i < n_names; i++)
            load_one(reg, names[i], res);
    } else {
        load_one(reg, reg->path, res);
    }

    /* Files that are gone take their datasets with them. */
    for (size_t i = 0; i < reg->n_files;) {
        if (reg->files[i].seen) {
            i++;
            continue;
        }
        res->files_removed++;
        ferry_info(NULL, "registry: %s is gone (%zu datasets leave the registry)",
                   reg->files[i].path, reg->files[i].n);
        free(reg->files[i].path);
        free_specs(reg->files[i].specs, reg->files[i].n);
        reg->files[i] = reg->files[--reg->n_files];
    }
    /* Keep files in path order so "first file wins" is stable. */
    for (size_t i = 1; i < reg->n_files; i++)
        for (size_t j = i; j > 0 && strcmp(reg->files[j - 1].path, reg->files[j].path) > 0;
             j--) {
            reg_file t = reg->files[j];
            reg->files[j] = reg->files[j - 1];
            reg->files[j - 1] = t;
        }
    rc = merge(reg, res, err);
out:
    for (size_t i = 0; i < n_names; i++)
        free(names[i]);
    free(names);
    return rc;
}
