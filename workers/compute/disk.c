#include "disk.h"
#include "qcow2.h"

#include "exec.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB (1024ULL * 1024 * 1024)

/* Every qemu-img run on tenant data is bounded: a crafted image must not make it spin
 * or balloon (OpenStack's limits: 1 GiB address space).  The only one left is the
 * convert of a raw image (overlays and blank disks are written by qcow2.c). */
static const sf_exec_opts_t QEMU_IMG_CONVERT_LIMITS = {.timeout_ms = SF_QEMU_IMG_CONVERT_TIMEOUT_MS,
                                                       .cpu_s = SF_QEMU_IMG_CONVERT_CPU_S,
                                                       .as_bytes = SF_QEMU_IMG_AS_BYTES};

static int qemu_img_run(char *const argv[], const sf_exec_opts_t *limits, const char *what) {
        _cleanup_free_ char *out = NULL;
        int r = sf_exec_limited(argv, limits, &out, NULL);

        if (r < 0)
                log_err("qemu-img %s %s failed: %s", argv[1], what, out && *out ? out : strerror(-r));
        return r;
}

int sf_disk_virtual_size(const char *image, uint64_t *ret_bytes) {
        int r;

        if (!image || !ret_bytes)
                return -EINVAL;
        /* The header's own field: callers pass qcow2 that sf_imgfmt_detect accepted or
         * that sf wrote. */
        r = sf_qcow2_info(image, ret_bytes, NULL, 0);
        if (r < 0)
                log_err("%s: cannot read its qcow2 header: %s", image, strerror(-r));
        return r < 0 ? -EIO : 0;
}

/* An existing overlay is ours if it is qcow2 and backed by base. */
static int check_existing(const char *base, const char *path) {
        char bf[1024];
        int r = sf_qcow2_info(path, NULL, bf, sizeof(bf));

        if (r < 0 || strcmp(bf, base) != 0) {
                log_err("disk %s exists but is not an overlay of %s", path, base);
                return -EEXIST;
        }
        return 0;
}

int sf_disk_overlay(const char *base, const char *path, uint64_t size_gib) {
        char tmp[PATH_MAX];
        uint64_t base_bytes = 0, want;
        struct stat st;
        int r;

        if (!base || !path || size_gib > UINT64_MAX / GIB)
                return -EINVAL;
        if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        if (stat(path, &st) == 0)
                return check_existing(base, path);
        if (errno != ENOENT)
                return -errno;

        r = sf_disk_virtual_size(base, &base_bytes);
        if (r < 0)
                return r;
        want = size_gib * GIB;
        if (size_gib && want < base_bytes) {
                log_err("disk %s: %" PRIu64 " GiB is smaller than image %s (%" PRIu64 " bytes): images cannot shrink",
                        path, size_gib, base, base_bytes);
                return -ERANGE;
        }

        /* Written directly, grown to its size at once (no create + resize execs). */
        unlink(tmp); /* a leftover of a killed run */
        r = sf_qcow2_create(tmp, want > base_bytes ? want : base_bytes, base, "qcow2", SF_QCOW2_CLUSTER_BITS);
        if (r < 0) {
                log_err("disk %s: cannot write the overlay: %s", tmp, strerror(-r));
                goto cleanup;
        }
        if (rename(tmp, path) < 0)
                r = -errno;
cleanup:
        if (r < 0)
                unlink(tmp);
        return r;
}

int sf_disk_blank(const char *path, uint64_t size_gib) {
        char tmp[PATH_MAX];
        int r;

        if (!path || size_gib > UINT64_MAX / GIB)
                return -EINVAL;
        if (access(path, F_OK) == 0)
                return 0;
        if (snprintf(tmp, sizeof(tmp), "%s.partial", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        unlink(tmp); /* a leftover of a killed run */
        r = sf_qcow2_create(tmp, size_gib * GIB, NULL, NULL, 16); /* qemu-img's default clusters */
        if (r < 0)
                log_err("disk %s: cannot write it: %s", tmp, strerror(-r));
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}

int sf_disk_to_qcow2(const char *src, sf_imgfmt_t fmt, const char *path) {
        char tmp[PATH_MAX];
        int r;

        if (!src || !path)
                return -EINVAL;
        if (access(path, F_OK) == 0)
                return 0;
        if (snprintf(tmp, sizeof(tmp), "%s.partial", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        char *argv[] = {"qemu-img", "convert", "-f", (char *)sf_imgfmt_name(fmt), "-O", "qcow2", (char *)src, tmp, NULL};
        r = qemu_img_run(argv, &QEMU_IMG_CONVERT_LIMITS, src);
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0)
                unlink(tmp);
        return r;
}
