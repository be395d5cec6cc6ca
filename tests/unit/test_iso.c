/* Unit tests for workers/compute/iso.c: the image is read back by isoinfo (both trees)
 * and blkid (label and type), file by file, byte for byte. */
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
#include <unistd.h>

#include "../../workers/compute/iso.h"
#include "exec.h"
#include "util.h"

static char dir[] = "/tmp/sfisoXXXXXX";
static char iso[256];
static unsigned char bin[5000];

static const char META[] = "{\"uuid\": \"6a0c5d1e-0000-4000-8000-000000000001\", \"name\": \"vm\"}";
static const char NET[] = "{\"links\": [], \"networks\": [], \"services\": []}";

static sf_iso_file_t files[] = {
        {"openstack/latest/meta_data.json", META, sizeof(META) - 1},
        {"openstack/latest/network_data.json", NET, sizeof(NET) - 1},
        {"openstack/latest/vendor_data.json", "{}", 2},
        {"openstack/latest/vendor_data2.json", "{}", 2},
        {"openstack/latest/user_data", bin, sizeof(bin)},
        {"openstack/2017-02-22/meta_data.json", META, sizeof(META) - 1},
        {"openstack/2017-02-22/empty", "", 0},
};

static int setup(void **state) {
        (void)state;
        if (!mkdtemp(dir))
                return -1;
        for (size_t i = 0; i < sizeof(bin); i++)
                bin[i] = (unsigned char)(i * 7 + (i >> 8));
        snprintf(iso, sizeof(iso), "%s/config.iso", dir);
        return sf_iso_write(iso, "config-2", files, SF_ARRAY_SIZE(files), 0600);
}

static int teardown(void **state) {
        (void)state;
        return sf_rm_rf(dir);
}

static char *out_of(char **argv) {
        char *out = NULL;
        int status = 0;
        assert_int_equal(sf_exec(argv, &out, &status), 0);
        assert_non_null(out);
        return out;
}

static void test_label_and_mode(void **state) {
        struct stat st;

        (void)state;
        char *a[] = {"blkid", "-p", "-o", "value", "-s", "LABEL", iso, NULL};
        _cleanup_free_ char *label = out_of(a);
        assert_string_equal(label, "config-2\n");
        char *b[] = {"blkid", "-p", "-o", "value", "-s", "TYPE", iso, NULL};
        _cleanup_free_ char *type = out_of(b);
        assert_string_equal(type, "iso9660\n");
        assert_int_equal(stat(iso, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        char *d[] = {"isoinfo", "-d", "-i", iso, NULL};
        _cleanup_free_ char *desc = out_of(d);
        assert_non_null(strstr(desc, "Joliet with UCS level 3"));
}

/* Every file under its Joliet name, byte for byte. */
static void test_joliet_contents(void **state) {
        (void)state;
        char *l[] = {"isoinfo", "-J", "-f", "-i", iso, NULL};
        _cleanup_free_ char *list = out_of(l);
        for (size_t i = 0; i < SF_ARRAY_SIZE(files); i++) {
                char p[300], line[310];
                snprintf(p, sizeof(p), "/%s", files[i].path);
                snprintf(line, sizeof(line), "%s\n", p);
                assert_non_null(strstr(list, line));
                char *x[] = {"isoinfo", "-J", "-x", p, "-i", iso, NULL};
                _cleanup_free_ char *got = NULL;
                size_t n = 0;
                /* sf_exec's output is text: compare text files as strings, the binary one by
                 * extracting to a file. */
                if (files[i].data != bin) {
                        got = out_of(x);
                        n = strlen(got);
                        assert_int_equal(n, files[i].len);
                        assert_memory_equal(got, files[i].data, n);
                }
        }
}

static void test_binary_file(void **state) {
        char sh[600], outp[300];
        _cleanup_free_ char *got = NULL;
        size_t n = 0;

        (void)state;
        snprintf(outp, sizeof(outp), "%s/ud.bin", dir);
        snprintf(sh, sizeof(sh), "isoinfo -J -x /openstack/latest/user_data -i '%s' > '%s'", iso, outp);
        char *argv[] = {"sh", "-c", sh, NULL};
        assert_int_equal(sf_exec(argv, NULL, NULL), 0);
        assert_int_equal(sf_file_read(outp, &got, &n), 0);
        assert_int_equal(n, sizeof(bin));
        assert_memory_equal(got, bin, n);
}

/* Rock Ridge readers (Linux prefers it) see the real names in the primary tree. */
static void test_rock_ridge(void **state) {
        (void)state;
        char *l[] = {"isoinfo", "-R", "-l", "-i", iso, NULL};
        _cleanup_free_ char *list = out_of(l);
        assert_non_null(strstr(list, "Directory listing of /openstack/2017-02-22/"));
        assert_non_null(strstr(list, " vendor_data2.json"));
        assert_non_null(strstr(list, "-r--r--r--"));
        assert_non_null(strstr(list, "dr-xr-xr-x"));
        char *x[] = {"isoinfo", "-R", "-x", "/openstack/latest/meta_data.json", "-i", iso, NULL};
        _cleanup_free_ char *got = out_of(x);
        assert_string_equal(got, META);
}

/* Readers without either see the same tree in uppercase d-characters. */
static void test_primary_tree(void **state) {
        (void)state;
        char *l[] = {"isoinfo", "-f", "-i", iso, NULL};
        _cleanup_free_ char *list = out_of(l);
        assert_non_null(strstr(list, "/OPENSTACK/LATEST/META_DATA.JSON;1\n"));
        assert_non_null(strstr(list, "/OPENSTACK/2017_02_22/META_DATA.JSON;1\n"));
        char *x[] = {"isoinfo", "-x", "/OPENSTACK/LATEST/NETWORK_DATA.JSON;1", "-i", iso, NULL};
        _cleanup_free_ char *got = out_of(x);
        assert_string_equal(got, NET);
}

static void test_refused(void **state) {
        char p[300];
        sf_iso_file_t bad[] = {{"/abs/x", "a", 1}};
        sf_iso_file_t empty_comp[] = {{"a//x", "a", 1}};

        (void)state;
        snprintf(p, sizeof(p), "%s/bad.iso", dir);
        assert_int_equal(sf_iso_write(p, "config-2", bad, 1, 0600), -EINVAL);
        assert_int_equal(sf_iso_write(p, "config-2", empty_comp, 1, 0600), -EINVAL);
        assert_int_equal(sf_iso_write(p, "a-label-longer-than-16", files, 1, 0600), -EINVAL);
        assert_int_equal(access(p, F_OK), -1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_label_and_mode),
                cmocka_unit_test(test_joliet_contents),
                cmocka_unit_test(test_binary_file),
                cmocka_unit_test(test_rock_ridge),
                cmocka_unit_test(test_primary_tree),
                cmocka_unit_test(test_refused),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
