/* Disk image formats, told by sf from the bytes themselves: a tenant's image is
 * untrusted, and letting qemu-img guess its format lets it name host files (a vmdk
 * extent, a qcow2 backing or data file) that qemu would then read into a guest's disk.
 * Only two formats are accepted; every other one qemu knows is refused by its magic, and
 * anything unknown is raw (qemu is then told `-f raw`, so its bytes are never parsed). */
#pragma once
#include <stddef.h>

typedef enum {
        SF_IMGFMT_RAW,   /* plain bytes (also ISO 9660: cdroms are raw) */
        SF_IMGFMT_QCOW2, /* self-contained qcow2: no backing file, no data file, no encryption */
} sf_imgfmt_t;

/* "raw" / "qcow2": the name qemu's -f wants. */
const char *sf_imgfmt_name(sf_imgfmt_t fmt);

/* Detect the format of the image in fd (read with pread; the offset is not moved).
 * 0 and *ret_fmt on success; -EMEDIUMTYPE when the image is refused, with the reason
 * ("image is vmdk: only raw and qcow2 images are supported", "qcow2 image names a backing
 * file: refused", ...) in reason; another -errno when it cannot be read. */
int sf_imgfmt_detect_fd(int fd, sf_imgfmt_t *ret_fmt, char *reason, size_t reason_len);
/* The same for a path (opened read-only, symlinks not followed). */
int sf_imgfmt_detect(const char *path, sf_imgfmt_t *ret_fmt, char *reason, size_t reason_len);
