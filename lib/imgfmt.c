/* Format detection from the header, after qemu's own probes (the `*_probe` functions in qemu's block/), so
 * that every format qemu could recognise is named and refused rather than guessed. */
#include "imgfmt.h"

#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEAD_LEN 4096 /* qemu probes the first 2 KiB; the vdi signature sits at 64 */
#define TAIL_LEN 1024 /* vpc footers and the dmg "koly" trailer are in the last 512 bytes */

#define QCOW2_MAGIC "QFI\xfb"
#define QCOW2_V2_HEADER_LEN 72
#define QCOW2_V3_HEADER_MIN 104
#define QCOW2_CLUSTER_BITS_MIN 9
#define QCOW2_CLUSTER_BITS_MAX 21
#define QCOW2_INCOMPAT_CORRUPT (1ULL << 1)
#define QCOW2_INCOMPAT_DATA_FILE (1ULL << 2)
#define QCOW2_INCOMPAT_KNOWN 0x1fULL /* dirty, corrupt, data file, compression type, extended L2 */
#define QCOW2_EXT_END 0x00000000u
#define QCOW2_EXT_CRYPTO 0x0537be77u
#define QCOW2_EXT_DATA_FILE 0x44415441u /* "DATA" */
#define QCOW2_EXT_MAX 4096
#define VDI_SIGNATURE 0xbeda107fu

static uint32_t be32(const unsigned char *p) {
        return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t be64(const unsigned char *p) {
        return (uint64_t)be32(p) << 32 | be32(p + 4);
}

static uint32_t le32(const unsigned char *p) {
        return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static int read_at(int fd, void *buf, size_t len, off_t off, size_t *ret_len) {
        size_t got = 0;

        while (got < len) {
                ssize_t n = pread(fd, (char *)buf + got, len - got, off + (off_t)got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                got += (size_t)n;
        }
        *ret_len = got;
        return 0;
}

static bool has_prefix(const unsigned char *buf, size_t len, const char *magic, size_t mlen) {
        return len >= mlen && memcmp(buf, magic, mlen) == 0;
}

#define HAS_MAGIC(buf, len, lit) has_prefix(buf, len, lit, sizeof(lit) - 1)

/* qemu's vmdk_probe for text descriptors: comment and blank lines, then "version=1|2|3". */
static bool vmdk_descriptor(const unsigned char *buf, size_t len) {
        const char *p = (const char *)buf, *end = p + len;

        if (HAS_MAGIC(buf, len, "# Disk DescriptorFile"))
                return true;
        while (p < end) {
                if (*p == '#') {
                        while (p < end && *p != '\n')
                                p++;
                        p++;
                        continue;
                }
                if (*p == ' ' || *p == '\r' || *p == '\n') {
                        while (p < end && (*p == ' ' || *p == '\r'))
                                p++;
                        if (p < end && *p != '\n')
                                return false;
                        p++;
                        continue;
                }
                return end - p >= 9 && memcmp(p, "version=", 8) == 0 && p[8] >= '1' && p[8] <= '3';
        }
        return false;
}

/* The name of a format qemu knows other than raw and qcow2, or NULL. */
static const char *foreign_format(const unsigned char *head, size_t hlen, const unsigned char *tail, size_t tlen) {
        static const struct {
                const char *magic;
                size_t len;
                const char *name;
        } magics[] = {
                {"KDMV", 4, "vmdk"},
                {"COWD", 4, "vmdk"},
                {"vhdxfile", 8, "vhdx"},
                {"conectix", 8, "vpc"},
                {"LUKS\xba\xbe", 6, "luks"},
                {"QED\0", 4, "qed"},
                {"WithoutFreeSpace", 16, "parallels"},
                {"WithouFreSpacExt", 16, "parallels"},
                {"Bochs Virtual HD Image", 22, "bochs"},
                {"#!/bin/sh\n#V2.0 Format\n", 23, "cloop"},
        };

        for (size_t i = 0; i < SF_ARRAY_SIZE(magics); i++)
                if (has_prefix(head, hlen, magics[i].magic, magics[i].len))
                        return magics[i].name;
        if (hlen >= 68 && le32(head + 64) == VDI_SIGNATURE)
                return "vdi";
        if (vmdk_descriptor(head, hlen))
                return "vmdk";
        /* Fixed-size VHDs have only a footer: 512 bytes, or 511 from old tools. */
        if (tlen >= 512 && (has_prefix(tail + tlen - 512, 512, "conectix", 8) ||
                            has_prefix(tail + tlen - 511, 511, "conectix", 8)))
                return "vpc";
        if (tlen >= 512 && has_prefix(tail + tlen - 512, 512, "koly", 4))
                return "dmg";
        return NULL;
}

#define REFUSE(...) (snprintf(reason, reason_len, __VA_ARGS__), -EMEDIUMTYPE)

/* A qcow2 is accepted only if qemu can open it with nothing but its own bytes. */
static int qcow2_check(int fd, const unsigned char *head, size_t hlen, off_t size, char *reason, size_t reason_len) {
        uint32_t version, cluster_bits, header_len = QCOW2_V2_HEADER_LEN;
        uint64_t incompat = 0, cluster_size, off;

        if (hlen < QCOW2_V2_HEADER_LEN)
                return REFUSE("qcow2 image header is truncated: refused");
        version = be32(head + 4);
        if (version == 1)
                return REFUSE("image is qcow (version 1): only raw and qcow2 images are supported");
        if (version != 2 && version != 3)
                return REFUSE("qcow2 version %u is not supported: refused", version);
        if (be64(head + 8) != 0)
                return REFUSE("qcow2 image names a backing file: refused");
        cluster_bits = be32(head + 20);
        if (cluster_bits < QCOW2_CLUSTER_BITS_MIN || cluster_bits > QCOW2_CLUSTER_BITS_MAX)
                return REFUSE("qcow2 image has an invalid cluster size: refused");
        cluster_size = 1ULL << cluster_bits;
        if (be32(head + 32) != 0)
                return REFUSE("qcow2 image is encrypted: refused");
        if (version == 3) {
                if (hlen < QCOW2_V3_HEADER_MIN)
                        return REFUSE("qcow2 image header is truncated: refused");
                incompat = be64(head + 72);
                header_len = be32(head + 100);
                if (header_len < QCOW2_V3_HEADER_MIN || header_len % 8 || header_len >= cluster_size)
                        return REFUSE("qcow2 image header is malformed: refused");
        }
        if (incompat & QCOW2_INCOMPAT_DATA_FILE)
                return REFUSE("qcow2 image uses an external data file: refused");
        if (incompat & QCOW2_INCOMPAT_CORRUPT)
                return REFUSE("qcow2 image is marked corrupt: refused");
        if (incompat & ~QCOW2_INCOMPAT_KNOWN)
                return REFUSE("qcow2 image needs unknown features (0x%llx): refused",
                              (unsigned long long)(incompat & ~QCOW2_INCOMPAT_KNOWN));
        /* Header extensions run from the end of the header to the end of cluster 0. */
        off = header_len;
        for (int i = 0; i < QCOW2_EXT_MAX && off + 8 <= cluster_size && (off_t)(off + 8) <= size; i++) {
                unsigned char ext[8];
                uint32_t type, len;
                size_t got = 0;
                int r = read_at(fd, ext, sizeof(ext), (off_t)off, &got);

                if (r < 0)
                        return r;
                if (got < sizeof(ext))
                        break;
                type = be32(ext);
                len = be32(ext + 4);
                if (type == QCOW2_EXT_END)
                        return 0;
                if (type == QCOW2_EXT_DATA_FILE)
                        return REFUSE("qcow2 image uses an external data file: refused");
                if (type == QCOW2_EXT_CRYPTO)
                        return REFUSE("qcow2 image is encrypted: refused");
                if (len > cluster_size - off - 8)
                        return REFUSE("qcow2 image header extension is malformed: refused");
                off += 8 + (((uint64_t)len + 7) & ~7ULL);
        }
        return 0;
}

const char *sf_imgfmt_name(sf_imgfmt_t fmt) {
        return fmt == SF_IMGFMT_QCOW2 ? "qcow2" : "raw";
}

int sf_imgfmt_detect_fd(int fd, sf_imgfmt_t *ret_fmt, char *reason, size_t reason_len) {
        unsigned char head[HEAD_LEN], tail[TAIL_LEN];
        size_t hlen = 0, tlen = 0;
        const char *foreign;
        struct stat st;
        int r;

        if (fd < 0 || !ret_fmt || !reason || !reason_len)
                return -EINVAL;
        reason[0] = 0;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return REFUSE("image is not a regular file: refused");
        r = read_at(fd, head, sizeof(head), 0, &hlen);
        if (r < 0)
                return r;
        if (st.st_size > 0) {
                off_t from = st.st_size > TAIL_LEN ? st.st_size - TAIL_LEN : 0;
                r = read_at(fd, tail, (size_t)(st.st_size - from), from, &tlen);
                if (r < 0)
                        return r;
        }
        if (HAS_MAGIC(head, hlen, QCOW2_MAGIC)) {
                r = qcow2_check(fd, head, hlen, st.st_size, reason, reason_len);
                if (r < 0)
                        return r;
                *ret_fmt = SF_IMGFMT_QCOW2;
                return 0;
        }
        foreign = foreign_format(head, hlen, tail, tlen);
        if (foreign)
                return REFUSE("image is %s: only raw and qcow2 images are supported", foreign);
        *ret_fmt = SF_IMGFMT_RAW;
        return 0;
}

int sf_imgfmt_detect(const char *path, sf_imgfmt_t *ret_fmt, char *reason, size_t reason_len) {
        _cleanup_close_ int fd = -1;

        if (!path)
                return -EINVAL;
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        return sf_imgfmt_detect_fd(fd, ret_fmt, reason, reason_len);
}
