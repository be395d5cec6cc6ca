/* Instance block devices: qcow2 copy-on-write overlays on image-cache files. */
#pragma once
#include <stdint.h>

/* Create path as a qcow2 overlay of the qcow2 base, grown to size_gib GiB (0 ⇒ the
 * base's size).  Built under path.tmp and renamed, so path is either absent or
 * complete.  Idempotent: an existing path backed by base is success; backed by
 * something else is -EEXIST.  -ERANGE if size_gib is smaller than the base
 * (upstream "ImagesCannotShrink"); -EIO if qemu-img fails. */
int sf_disk_overlay(const char *base, const char *path, uint64_t size_gib);
/* Virtual size of an image in bytes, from `qemu-img info --output=json`. */
int sf_disk_virtual_size(const char *image, uint64_t *ret_bytes);
