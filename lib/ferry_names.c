#include "ferry_names.h"

#include <stdio.h>
#include <string.h>

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

int ferry_dataset_name_valid(const char *name, char *why, size_t why_size)
{
    size_t i, len;
    const char *msg = NULL;

    if (!name || !*name) {
        msg = "dataset name is empty";
        goto out;
    }
    len = strlen(name);
    if (len > FERRY_DATASET_NAME_MAX) {
        msg = "dataset name is longer than 63 characters";
        goto out;
    }
    if (!is_lower_alnum((unsigned char)name[0])) {
        msg = "dataset name must start with a lowercase letter or digit";
        goto out;
    }
    for (i = 1; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-') {
            if (why && why_size) {
                if (c >= 0x21 && c < 0x7F)
                    snprintf(why, why_size,
                             "dataset name may hold only a-z, 0-9, '.', '_' and '-' "
                             "(found '%c' at position %zu)",
                             c, i + 1);
                else
                    snprintf(why, why_size,
                             "dataset name may hold only a-z, 0-9, '.', '_' and '-' "
                             "(found byte 0x%02X at position %zu)",
                             c, i + 1);
            }
            return 0;
        }
    }
    return 1;
out:
    if (why && why_size)
        snprintf(why, why_size, "%s", msg);
    return 0;
}
