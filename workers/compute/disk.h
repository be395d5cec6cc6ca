/* Instance block devices: qcow2 copy-on-write overlays on image-cache files.  Every
 * qemu-img run here names its input format (-f/-F: never guessed from tenant bytes) and
 * runs under the limits below. */
#pragma once
#include "imgfmt.h"

#include <stdint.h>

/* Limits of a qemu-img run (info, create, resize) on tenant data. */
#define SF_QEMU_IMG_CPU_S 30
#define SF_QEMU_IMG_AS_BYTES (1ULL << 30)
#define SF_QEMU_IMG_TIMEOUT_MS (120 * 1000)
/* A convert copies the whole image, so it gets more time (same memory). */
#define SF_QEMU_IMG_CONVERT_CPU_S 600
#define SF_QEMU_IMG_CONVERT_TIMEOUT_MS (1200 * 1000)

/* Create path as a qcow2 overlay of the qcow2 base, grown to size_gib GiB (0 ⇒ the
 * base's size).  Built under path.tmp and renamed, so path is either absent or
 * complete.  Idempotent: an existing path backed by base is success; backed by
 * something else is -EEXIST.  -ERANGE if size_gib is smaller than the base
 * (upstream "ImagesCannotShrink"); -EIO if qemu-img fails, -ETIMEDOUT if it hangs. */
int sf_disk_overlay(const char *base, const char *path, uint64_t size_gib);
/* Virtual size in bytes of a qcow2 image, from `qemu-img info -f qcow2 --output=json`. */
int sf_disk_virtual_size(const char *image, uint64_t *ret_bytes);
/* An empty qcow2 of size_gib GiB at path (built as path.partial, renamed).  An existing
 * path is success.  -EIO / -ETIMEDOUT if qemu-img fails. */
int sf_disk_blank(const char *path, uint64_t size_gib);
/* Transcode src, whose format fmt the caller detected (sf_imgfmt_detect), into a qcow2 at
 * path (built as path.partial, renamed).  An existing path is success.  -EIO /
 * -ETIMEDOUT if qemu-img fails. */
int sf_disk_to_qcow2(const char *src, sf_imgfmt_t fmt, const char *path);
