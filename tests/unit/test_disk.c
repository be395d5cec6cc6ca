/* Unit tests for workers/compute/disk.c against real qemu-img on small images in /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../../workers/compute/disk.h"
#include "exec.h"
#include "util.h"

#define GIB (1024ULL * 1024 * 1024)

static char dir[] = "/tmp/sfdiskXXXXXX";
static char base[256], other[256];

static int setup(void **state) {
        (void)state;
        if (!mkdtemp(dir))
                return -1;
        snprintf(base, sizeof(base), "%s/base.qcow2", dir);
        snprintf(other, sizeof(other), "%s/other.qcow2", dir);
        char *a[] = {"qemu-img", "create", "-f", "qcow2", base, "2G", NULL};
        char *b[] = {"qemu-img", "create", "-f", "qcow2", other, "1G", NULL};
        return sf_exec(a, NULL, NULL) < 0 || sf_exec(b, NULL, NULL) < 0 ? -1 : 0;
}

static int teardown(void **state) {
        (void)state;
        return sf_rm_rf(dir);
}

static void test_virtual_size(void **state) {
        uint64_t n = 0;
        char missing[300];

        (void)state;
        assert_int_equal(sf_disk_virtual_size(base, &n), 0);
        assert_int_equal(n, 2 * GIB);
        snprintf(missing, sizeof(missing), "%s/missing.qcow2", dir);
        assert_int_equal(sf_disk_virtual_size(missing, &n), -EIO);
}

static void test_overlay_grow(void **state) {
        char path[300], tmp[310];
        uint64_t n = 0;
        struct stat st;

        (void)state;
        snprintf(path, sizeof(path), "%s/vda", dir);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        assert_int_equal(sf_disk_overlay(base, path, 5), 0);
        assert_int_equal(sf_disk_virtual_size(path, &n), 0);
        assert_int_equal(n, 5 * GIB);
        assert_int_equal(stat(tmp, &st), -1);

        char *info[] = {"qemu-img", "info", "--output=json", path, NULL};
        char *out = NULL;
        assert_int_equal(sf_exec(info, &out, NULL), 0);
        assert_non_null(strstr(out, base));
        assert_non_null(strstr(out, "\"cluster-size\": 2097152"));
        free(out);

        /* Idempotent: same base is fine (even with another size); another base is not. */
        assert_int_equal(sf_disk_overlay(base, path, 5), 0);
        assert_int_equal(sf_disk_overlay(other, path, 5), -EEXIST);
}

static void test_overlay_keep_size(void **state) {
        char path[300];
        uint64_t n = 0;

        (void)state;
        snprintf(path, sizeof(path), "%s/vdb", dir);
        assert_int_equal(sf_disk_overlay(base, path, 0), 0);
        assert_int_equal(sf_disk_virtual_size(path, &n), 0);
        assert_int_equal(n, 2 * GIB);
        /* Same size as the base: no resize needed. */
        snprintf(path, sizeof(path), "%s/vdc", dir);
        assert_int_equal(sf_disk_overlay(base, path, 2), 0);
        assert_int_equal(sf_disk_virtual_size(path, &n), 0);
        assert_int_equal(n, 2 * GIB);
}

static void test_overlay_shrink(void **state) {
        char path[300], tmp[310];
        struct stat st;

        (void)state;
        snprintf(path, sizeof(path), "%s/vdd", dir);
        snprintf(tmp, sizeof(tmp), "%s.tmp", path);
        assert_int_equal(sf_disk_overlay(base, path, 1), -ERANGE);
        assert_int_equal(stat(path, &st), -1);
        assert_int_equal(stat(tmp, &st), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_virtual_size),
                cmocka_unit_test(test_overlay_grow),
                cmocka_unit_test(test_overlay_keep_size),
                cmocka_unit_test(test_overlay_shrink),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
