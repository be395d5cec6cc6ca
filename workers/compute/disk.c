#include "disk.h"

#include "exec.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define GIB (1024ULL * 1024 * 1024)

/* Every qemu-img run on tenant data is bounded: a crafted image must not make it spin
 * or balloon (OpenStack's limits for `qemu-img info`: 30 s CPU, 1 GiB address space). */
static const sf_exec_opts_t QEMU_IMG_LIMITS = {
        .timeout_ms = SF_QEMU_IMG_TIMEOUT_MS, .cpu_s = SF_QEMU_IMG_CPU_S, .as_bytes = SF_QEMU_IMG_AS_BYTES};
/* A convert reads and writes the whole image: same memory, more time. */
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

/* `qemu-img info` of a qcow2 as parsed JSON.  -U: the image may be open by a running guest. */
static int image_info(const char *image, json_object **ret) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {"qemu-img", "info", "-f", "qcow2", "-U", "--output=json", (char *)image, NULL};
        json_object *o;
        int r;

        r = sf_exec_limited(argv, &QEMU_IMG_LIMITS, &out, NULL);
        if (r < 0) {
                log_err("qemu-img info %s failed: %s", image, out ? out : strerror(-r));
                return r;
        }
        o = json_tokener_parse(out);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                log_err("qemu-img info %s: unparsable output", image);
                return -EIO;
        }
        *ret = o;
        return 0;
}

int sf_disk_virtual_size(const char *image, uint64_t *ret_bytes) {
        json_object *info = NULL, *v = NULL;
        int r;

        if (!image || !ret_bytes)
                return -EINVAL;
        r = image_info(image, &info);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(info, "virtual-size", &v) || !json_object_is_type(v, json_type_int)) {
                log_err("qemu-img info %s: no virtual-size", image);
                r = -EIO;
                goto cleanup;
        }
        *ret_bytes = (uint64_t)json_object_get_int64(v);
cleanup:
        json_object_put(info);
        return r;
}

/* An existing overlay is ours if it is qcow2 and backed by base. */
static int check_existing(const char *base, const char *path) {
        json_object *info = NULL, *fmt = NULL, *bf = NULL;
        int r;

        r = image_info(path, &info);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(info, "format", &fmt) || strcmp(json_object_get_string(fmt), "qcow2") != 0 ||
            !json_object_object_get_ex(info, "backing-filename", &bf) ||
            strcmp(json_object_get_string(bf), base) != 0) {
                log_err("disk %s exists but is not an overlay of %s", path, base);
                r = -EEXIST;
        }
        json_object_put(info);
        return r;
}

int sf_disk_overlay(const char *base, const char *path, uint64_t size_gib) {
        char tmp[PATH_MAX], size[32];
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

        /* 2 MiB clusters as upstream: fewer L2 lookups, matches the image cache. */
        char *create[] = {"qemu-img", "create", "-f", "qcow2", "-o", "cluster_size=2048K", "-F", "qcow2",
                          "-b", (char *)base, tmp, NULL};
        r = qemu_img_run(create, &QEMU_IMG_LIMITS, tmp);
        if (r < 0)
                goto cleanup;
        if (size_gib && want > base_bytes) {
                char *resize[] = {"qemu-img", "resize", "-f", "qcow2", tmp, size, NULL};
                snprintf(size, sizeof(size), "%" PRIu64, want);
                r = qemu_img_run(resize, &QEMU_IMG_LIMITS, tmp);
                if (r < 0)
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
        char tmp[PATH_MAX], size[32];
        int r;

        if (!path || size_gib > UINT64_MAX / GIB)
                return -EINVAL;
        if (access(path, F_OK) == 0)
                return 0;
        if (snprintf(tmp, sizeof(tmp), "%s.partial", path) >= (int)sizeof(tmp))
                return -ENAMETOOLONG;
        snprintf(size, sizeof(size), "%" PRIu64 "G", size_gib);
        char *argv[] = {"qemu-img", "create", "-f", "qcow2", tmp, size, NULL};
        r = qemu_img_run(argv, &QEMU_IMG_LIMITS, tmp);
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
