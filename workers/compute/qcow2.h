/* Empty qcow2 images written by sf itself (qcow2.c): the overlays and blank disks of a
 * create, without a qemu-img exec per disk. */
#pragma once
#include <stddef.h>
#include <stdint.h>

#define SF_QCOW2_CLUSTER_BITS 21 /* 2 MiB clusters, as upstream's overlays */

/* A new, empty qcow2 v3 image at path (created with O_EXCL: an existing file is -EEXIST)
 * of size bytes; when backing is not NULL its reads fall through to the image backing
 * (absolute path, at most 1023 bytes) of format backing_fmt ("qcow2", "raw").
 * cluster_bits 16..21.  0 or a negative errno; nothing is left behind on failure. */
int sf_qcow2_create(const char *path, uint64_t size, const char *backing, const char *backing_fmt,
                    unsigned cluster_bits);
/* From a qcow2 header: the virtual size and (if ret_backing) the backing file name, ""
 * when none.  -EMEDIUMTYPE if path is not qcow2 (v2 or v3). */
int sf_qcow2_info(const char *path, uint64_t *ret_size, char *ret_backing, size_t backing_len);
