/* sf-compute: empty qcow2 images written directly (no qemu-img exec: about 1,000 times
 * cheaper, which is most of a create's own time).  The layout is what `qemu-img create -f
 * qcow2 -o cluster_size=...` writes: version 3, 16-bit refcounts, cluster 0 the header
 * (+ backing format extension + backing file name), cluster 1 the refcount table, cluster
 * 2 its one refcount block, cluster 3 the L1 table; no data cluster yet.  One refcount
 * block covers cluster_size/2 clusters, so every image this writes fits it. */
#include "qcow2.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define QCOW2_MAGIC 0x514649fbU
#define EXT_BACKING_FORMAT 0xe2792acaU
#define HEADER_LEN 112 /* v3 with the compression type byte, as qemu writes it */

static void put32(unsigned char *p, uint32_t v) {
        p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8);
        p[3] = (unsigned char)v;
}

static void put64(unsigned char *p, uint64_t v) {
        put32(p, (uint32_t)(v >> 32));
        put32(p + 4, (uint32_t)v);
}

static uint32_t get32(const unsigned char *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get64(const unsigned char *p) {
        return (uint64_t)get32(p) << 32 | get32(p + 4);
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off) {
        const unsigned char *p = buf;

        while (len > 0) {
                ssize_t n = pwrite(fd, p, len, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n, len -= (size_t)n, off += n;
        }
        return 0;
}

int sf_qcow2_create(const char *path, uint64_t size, const char *backing, const char *backing_fmt,
                    unsigned cluster_bits) {
        unsigned char head[1024 + HEADER_LEN + 64] = {0}, entry[8];
        uint64_t cs, l2_span, l1_size;
        size_t blen = backing ? strlen(backing) : 0, flen = backing_fmt ? strlen(backing_fmt) : 0, pos;
        int fd, r;

        if (!path || cluster_bits < 16 || cluster_bits > 21 || blen > 1023 || flen > 16 || (backing && !flen) ||
            size > (1ULL << 56))
                return -EINVAL;
        cs = 1ULL << cluster_bits;
        l2_span = cs * (cs / 8); /* bytes one L2 table maps */
        l1_size = (size + l2_span - 1) / l2_span;
        if (l1_size == 0)
                l1_size = 1;
        if (l1_size * 8 > cs)
                return -EFBIG;

        put32(head + 0, QCOW2_MAGIC);
        put32(head + 4, 3);
        put32(head + 20, cluster_bits);
        put64(head + 24, size);
        put32(head + 36, (uint32_t)l1_size);
        put64(head + 40, 3 * cs);  /* L1 table */
        put64(head + 48, cs);      /* refcount table */
        put32(head + 56, 1);       /* its clusters */
        put32(head + 96, 4);       /* refcount_order: 16 bits */
        put32(head + 100, HEADER_LEN);
        pos = HEADER_LEN;
        if (backing) {
                put32(head + pos, EXT_BACKING_FORMAT);
                put32(head + pos + 4, (uint32_t)flen);
                memcpy(head + pos + 8, backing_fmt, flen);
                pos += 8 + ((flen + 7) & ~(size_t)7);
        }
        pos += 8; /* end of extensions: type 0, length 0 */
        if (backing) {
                put64(head + 8, pos);
                put32(head + 16, (uint32_t)blen);
                memcpy(head + pos, backing, blen);
                pos += blen;
        }

        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        r = pwrite_all(fd, head, pos, 0);
        put64(entry, 2 * cs); /* refcount table[0] -> the block */
        if (r == 0)
                r = pwrite_all(fd, entry, 8, (off_t)cs);
        /* refcounts of clusters 0..3: 1 each */
        for (int i = 0; r == 0 && i < 4; i++) {
                unsigned char one[2] = {0, 1};
                r = pwrite_all(fd, one, 2, (off_t)(2 * cs + 2 * (uint64_t)i));
        }
        /* the L1 table: zeros (no L2 yet), to its end, so the file covers it */
        if (r == 0 && ftruncate(fd, (off_t)(3 * cs + l1_size * 8)) < 0)
                r = -errno;
        if (close(fd) < 0 && r == 0)
                r = -errno;
        if (r < 0)
                unlink(path);
        return r;
}

int sf_qcow2_info(const char *path, uint64_t *ret_size, char *ret_backing, size_t backing_len) {
        unsigned char h[HEADER_LEN];
        uint64_t boff;
        uint32_t blen;
        ssize_t n;
        int fd, r = 0;

        if (!path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        n = pread(fd, h, sizeof(h), 0);
        if (n < 104 || get32(h) != QCOW2_MAGIC || (get32(h + 4) != 2 && get32(h + 4) != 3)) {
                r = n < 0 ? -errno : -EMEDIUMTYPE;
                goto cleanup;
        }
        boff = get64(h + 8);
        blen = get32(h + 16);
        if (ret_backing) {
                if (backing_len == 0 || blen >= backing_len || blen > 1023) {
                        r = -ENAMETOOLONG;
                        goto cleanup;
                }
                if (boff && blen) {
                        n = pread(fd, ret_backing, blen, (off_t)boff);
                        if (n != (ssize_t)blen) {
                                r = n < 0 ? -errno : -EIO;
                                goto cleanup;
                        }
                }
                ret_backing[boff ? blen : 0] = 0;
        }
        if (ret_size)
                *ret_size = get64(h + 24);
cleanup:
        close(fd);
        return r;
}
