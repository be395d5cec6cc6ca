/* Small helpers shared by every process: uuids, time, files, cleanup attributes. */
#pragma once
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/types.h>
#include <unistd.h>

#define SF_UUID_LEN 37 /* 36 chars + NUL */

static inline void sf_freep(void *p) { free(*(void **)p); }
static inline void sf_closep(int *fd) { if (*fd >= 0) close(*fd); }
#define _cleanup_free_  __attribute__((cleanup(sf_freep)))
#define _cleanup_close_ __attribute__((cleanup(sf_closep)))
#define SF_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* A fresh random (v4) uuid in canonical lower-case form. */
void sf_uuid_new(char out[SF_UUID_LEN]);
/* True if s parses as a uuid (any case); canonical lower-case copy into out if non-NULL. */
bool sf_uuid_parse(const char *s, char out[SF_UUID_LEN]);

double sf_now(void);      /* epoch seconds, microsecond resolution */
int64_t sf_now_us(void);  /* epoch microseconds */
int64_t sf_mono_ms(void); /* monotonic milliseconds */

int sf_mkdir_p(const char *path, mode_t mode);
/* Whole file into a NUL-terminated buffer. -errno on failure. */
int sf_file_read(const char *path, char **ret, size_t *ret_len);
/* Write via a temporary file, fsync, rename: readers never see a partial file. */
int sf_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode);
/* Remove a directory tree (no symlink following). Missing is not an error. */
int sf_rm_rf(const char *path);

/* len random characters from [A-Za-z0-9] plus NUL; out must hold len+1. */
void sf_random_alnum(char *out, size_t len);
/* Fill buf with cryptographically random bytes. */
int sf_random_bytes(void *buf, size_t len);

/* Names users give objects: letters, digits, '-' and the characters in `extra`, 1..63
 * chars.  extra "" is a DNS label (instance names, api.md §2.3.1); namespaces and keys
 * also allow '_' (never '.': namespaces are NATS subject tokens), networks '_' and '.'. */
bool sf_name_valid_with(const char *s, const char *extra);
/* A DNS label: sf_name_valid_with(s, ""). */
bool sf_name_valid(const char *s);
/* printf into a fresh malloc'd string; NULL on OOM. */
char *sf_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
