/* Unit tests for workers/compute/qcow2.c: images sf writes itself must be what qemu
 * reads (qemu-img check finds no error, qemu-io sees the backing's data through an
 * overlay and can write to it). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../workers/compute/qcow2.h"
#include "exec.h"
#include "util.h"

#define GIB (1024ULL * 1024 * 1024)

static char dir[] = "/tmp/sfqcow2XXXXXX";

static int setup(void **state) {
        (void)state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        (void)state;
        return sf_rm_rf(dir);
}

static int run(char **argv) {
        _cleanup_free_ char *out = NULL;
        int status = 0, r = sf_exec(argv, &out, &status);
        if (r < 0)
                print_message("%s %s: %s\n", argv[0], argv[1], out ? out : "");
        return r;
}

/* qemu-img info's JSON of path (format given, never probed). */
static json_object *info(const char *path) {
        _cleanup_free_ char *out = NULL;
        char *argv[] = {"qemu-img", "info", "-f", "qcow2", "--output=json", (char *)path, NULL};
        assert_int_equal(sf_exec(argv, &out, NULL), 0);
        return json_tokener_parse(out);
}

static void check_clean(const char *path) {
        char *argv[] = {"qemu-img", "check", "-f", "qcow2", (char *)path, NULL};
        assert_int_equal(run(argv), 0);
}

static void test_blank(void **state) {
        char path[300];
        json_object *o, *v;
        uint64_t size = 0;
        char bf[64] = "x";

        (void)state;
        snprintf(path, sizeof(path), "%s/blank.qcow2", dir);
        assert_int_equal(sf_qcow2_create(path, 3 * GIB, NULL, NULL, 16), 0);
        check_clean(path);
        o = info(path);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "virtual-size", &v));
        assert_int_equal(json_object_get_int64(v), 3 * GIB);
        assert_false(json_object_object_get_ex(o, "backing-filename", &v));
        json_object_put(o);
        assert_int_equal(sf_qcow2_info(path, &size, bf, sizeof(bf)), 0);
        assert_int_equal(size, 3 * GIB);
        assert_string_equal(bf, "");
        /* written to by a guest: still consistent */
        char *w[] = {"qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1G 128k", path, NULL};
        assert_int_equal(run(w), 0);
        check_clean(path);
        char *rd[] = {"qemu-io", "-f", "qcow2", "-c", "read -P 0x5a 1G 128k", path, NULL};
        assert_int_equal(run(rd), 0);
        /* an existing file is never overwritten */
        assert_int_equal(sf_qcow2_create(path, GIB, NULL, NULL, 16), -EEXIST);
}

static void test_overlay(void **state) {
        char base[300], ov[300], bf[1024];
        json_object *o, *v;
        uint64_t size = 0;

        (void)state;
        snprintf(base, sizeof(base), "%s/base.qcow2", dir);
        snprintf(ov, sizeof(ov), "%s/vda.qcow2", dir);
        char *mk[] = {"qemu-img", "create", "-q", "-f", "qcow2", base, "1G", NULL};
        assert_int_equal(run(mk), 0);
        char *fill[] = {"qemu-io", "-f", "qcow2", "-c", "write -P 0xab 0 64k", base, NULL};
        assert_int_equal(run(fill), 0);

        assert_int_equal(sf_qcow2_create(ov, 5 * GIB, base, "qcow2", SF_QCOW2_CLUSTER_BITS), 0);
        check_clean(ov);
        o = info(ov);
        assert_non_null(o);
        assert_true(json_object_object_get_ex(o, "virtual-size", &v));
        assert_int_equal(json_object_get_int64(v), 5 * GIB);
        assert_true(json_object_object_get_ex(o, "backing-filename", &v));
        assert_string_equal(json_object_get_string(v), base);
        assert_true(json_object_object_get_ex(o, "backing-filename-format", &v));
        assert_string_equal(json_object_get_string(v), "qcow2");
        assert_true(json_object_object_get_ex(o, "cluster-size", &v));
        assert_int_equal(json_object_get_int64(v), 1 << SF_QCOW2_CLUSTER_BITS);
        json_object_put(o);

        /* the base's data shows through; writes land in the overlay only */
        char *rd[] = {"qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", ov, NULL};
        assert_int_equal(run(rd), 0);
        char *w[] = {"qemu-io", "-f", "qcow2", "-c", "write -P 0xcd 0 4k", "-c", "write -P 0xee 3G 4k", ov, NULL};
        assert_int_equal(run(w), 0);
        check_clean(ov);
        char *rd2[] = {"qemu-io", "-f", "qcow2", "-c", "read -P 0xcd 0 4k", "-c", "read -P 0xab 4k 60k",
                       "-c", "read -P 0xee 3G 4k", ov, NULL};
        assert_int_equal(run(rd2), 0);
        char *rb[] = {"qemu-io", "-f", "qcow2", "-c", "read -P 0xab 0 64k", base, NULL};
        assert_int_equal(run(rb), 0);

        assert_int_equal(sf_qcow2_info(ov, &size, bf, sizeof(bf)), 0);
        assert_int_equal(size, 5 * GIB);
        assert_string_equal(bf, base);
}

static void test_refused(void **state) {
        char path[300], notq[300], longname[1100];
        uint64_t size;

        (void)state;
        snprintf(path, sizeof(path), "%s/x.qcow2", dir);
        memset(longname, 'a', sizeof(longname) - 1);
        longname[0] = '/';
        longname[sizeof(longname) - 1] = 0;
        assert_int_equal(sf_qcow2_create(path, GIB, longname, "qcow2", 16), -EINVAL);
        assert_int_equal(sf_qcow2_create(path, GIB, NULL, NULL, 12), -EINVAL);
        assert_int_equal(sf_qcow2_create(path, GIB, "/base", NULL, 16), -EINVAL);
        assert_int_equal(access(path, F_OK), -1); /* nothing left behind */
        snprintf(notq, sizeof(notq), "%s/raw.img", dir);
        {
                char junk[150];
                memset(junk, '.', sizeof(junk));
                assert_int_equal(sf_file_write_atomic(notq, junk, sizeof(junk), 0644), 0);
        }
        assert_int_equal(sf_qcow2_info(notq, &size, NULL, 0), -EMEDIUMTYPE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_blank),
                cmocka_unit_test(test_overlay),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
