#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <uuid/uuid.h>

void sf_uuid_new(char out[SF_UUID_LEN]) {
        uuid_t u;

        uuid_generate_random(u);
        uuid_unparse_lower(u, out);
}

bool sf_uuid_parse(const char *s, char out[SF_UUID_LEN]) {
        uuid_t u;

        if (!s || strlen(s) != 36 || uuid_parse(s, u) != 0)
                return false;
        if (out)
                uuid_unparse_lower(u, out);
        return true;
}

int64_t sf_now_us(void) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double sf_now(void) { return (double)sf_now_us() / 1e6; }

int64_t sf_mono_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sf_mkdir_p(const char *path, mode_t mode) {
        char buf[4096];
        size_t len = strlen(path);

        if (len == 0 || len >= sizeof(buf))
                return -EINVAL;
        memcpy(buf, path, len + 1);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = 0;
                if (mkdir(buf, mode) < 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int sf_file_read(const char *path, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        char *buf = NULL;
        size_t len = 0, cap = 0;

        if (fd < 0)
                return -errno;
        for (;;) {
                if (cap - len < 4096) {
                        char *n = realloc(buf, cap ? cap * 2 : 8192);
                        if (!n) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = n;
                        cap = cap ? cap * 2 : 8192;
                }
                ssize_t r = read(fd, buf + len, cap - len - 1);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        int e = -errno;
                        free(buf);
                        return e;
                }
                if (r == 0)
                        break;
                len += (size_t)r;
        }
        buf[len] = 0;
        *ret = buf;
        if (ret_len)
                *ret_len = len;
        return 0;
}

int sf_file_write_atomic(const char *path, const void *data, size_t len, mode_t mode) {
        char tmp[4096];
        const char *p = data;
        int fd, r = 0;

        if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        while (len > 0) {
                ssize_t w = write(fd, p, len);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0) {
                        r = -errno;
                        goto cleanup;
                }
                p += w;
                len -= (size_t)w;
        }
        if (fchmod(fd, mode) < 0 || fsync(fd) < 0)
                r = -errno;
cleanup:
        close(fd);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
        (void)st;
        (void)flag;
        (void)f;
        return remove(p) < 0 && errno != ENOENT ? -1 : 0;
}

int sf_rm_rf(const char *path) {
        struct stat st;

        if (lstat(path, &st) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS) < 0)
                return -errno;
        return 0;
}

int sf_random_bytes(void *buf, size_t len) {
        char *p = buf;

        while (len > 0) {
                ssize_t r = getrandom(p, len, 0);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0)
                        return -errno;
                p += r;
                len -= (size_t)r;
        }
        return 0;
}

void sf_random_alnum(char *out, size_t len) {
        static const char set[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        unsigned char rnd[256];

        for (size_t i = 0; i < len; i++) {
                if (i % sizeof(rnd) == 0)
                        (void)sf_random_bytes(rnd, sizeof(rnd));
                out[i] = set[rnd[i % sizeof(rnd)] % (sizeof(set) - 1)];
        }
        out[len] = 0;
}

bool sf_name_valid_with(const char *s, const char *extra) {
        size_t n = 0;

        if (!s || !*s)
                return false;
        for (; s[n]; n++) {
                char c = s[n];
                if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                      (c >= '0' && c <= '9') || c == '-' || (extra && *extra && strchr(extra, c))))
                        return false;
        }
        return n <= 63;
}

bool sf_name_valid(const char *s) { return sf_name_valid_with(s, ""); }

char *sf_strdupf(const char *fmt, ...) {
        char *s = NULL;
        va_list ap;

        va_start(ap, fmt);
        if (vasprintf(&s, fmt, ap) < 0)
                s = NULL;
        va_end(ap);
        return s;
}
