/* A small ISO 9660 + Joliet image writer (iso.c) for config drives. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

typedef struct {
        const char *path; /* "openstack/latest/meta_data.json": ASCII, '/'-separated, no leading '/' */
        const void *data; /* borrowed */
        size_t len;
} sf_iso_file_t;

/* Writes an image holding files (directories made from their paths; at most 32 of them,
 * a few dozen entries each) with volume label label (at most 16 characters) to path,
 * created or truncated, with mode.  0 or a negative errno (-EINVAL, -E2BIG, I/O);
 * path is removed on failure. */
int sf_iso_write(const char *path, const char *label, const sf_iso_file_t *files, size_t nfiles, mode_t mode);
