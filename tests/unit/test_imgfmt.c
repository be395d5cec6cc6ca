/* Unit tests for lib/imgfmt.c: images made by real qemu-img in every format it writes,
 * plus hand-built headers for what qemu-img will not write (or writes only rarely). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "exec.h"
#include "imgfmt.h"
#include "util.h"

static char dir[] = "/tmp/sfimgfmtXXXXXX";

static const char *at(const char *name) {
        static char path[4][512];
        static int next;
        char *p = path[next++ % 4];

        snprintf(p, 512, "%s/%s", dir, name);
        return p;
}

/* qemu-img create with extra arguments; the image is the second-to-last argument. */
static void qemu_img_create(char *const *args) {
        char *argv[32] = {"qemu-img", "create", "-q"};
        size_t n = 3;
        char *out = NULL;

        for (; *args && n < 31; args++)
                argv[n++] = *args;
        argv[n] = NULL;
        if (sf_exec(argv, &out, NULL) != 0)
                fail_msg("qemu-img create failed: %s", out ? out : "?");
        free(out);
}

static void write_file(const char *path, const void *data, size_t len, off_t size) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

        assert_true(fd >= 0);
        if (size && ftruncate(fd, size) != 0)
                fail();
        assert_int_equal(pwrite(fd, data, len, 0), (ssize_t)len);
        close(fd);
}

static void write_at(const char *path, const void *data, size_t len, off_t off) {
        int fd = open(path, O_WRONLY);

        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, data, len, off), (ssize_t)len);
        close(fd);
}

static void expect_ok(const char *path, sf_imgfmt_t want) {
        sf_imgfmt_t fmt = (sf_imgfmt_t)-1;
        char reason[256] = "";
        int r = sf_imgfmt_detect(path, &fmt, reason, sizeof(reason));

        if (r != 0)
                fail_msg("%s: detect returned %d (%s), want %s", path, r, reason, sf_imgfmt_name(want));
        assert_int_equal(fmt, want);
}

static void expect_refused(const char *path, const char *why) {
        sf_imgfmt_t fmt = (sf_imgfmt_t)-1;
        char reason[256] = "";
        int r = sf_imgfmt_detect(path, &fmt, reason, sizeof(reason));

        if (r != -EMEDIUMTYPE)
                fail_msg("%s: detect returned %d (format %d), want refused: %s", path, r, (int)fmt, why);
        if (!strstr(reason, why))
                fail_msg("%s: reason '%s' does not say '%s'", path, reason, why);
        assert_int_equal(fmt, (sf_imgfmt_t)-1); /* ret_ untouched on failure */
}

static int setup(void **state) {
        (void)state;
        return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state) {
        (void)state;
        return sf_rm_rf(dir);
}

static void test_qcow2(void **state) {
        (void)state;
        qemu_img_create((char *[]){"-f", "qcow2", (char *)at("plain.qcow2"), "16M", NULL});
        expect_ok(at("plain.qcow2"), SF_IMGFMT_QCOW2);
        qemu_img_create((char *[]){"-f", "qcow2", "-o", "compat=0.10", (char *)at("v2.qcow2"), "16M", NULL});
        expect_ok(at("v2.qcow2"), SF_IMGFMT_QCOW2);
        /* our own overlay cluster size (2 MiB) is fine */
        qemu_img_create((char *[]){"-f", "qcow2", "-o", "cluster_size=2048K", (char *)at("big.qcow2"), "16M", NULL});
        expect_ok(at("big.qcow2"), SF_IMGFMT_QCOW2);
}

static void test_qcow2_backing(void **state) {
        (void)state;
        write_file(at("secret"), "host secret", 11, 1 << 20);
        qemu_img_create((char *[]){"-f", "qcow2", "-F", "raw", "-b", (char *)at("secret"), (char *)at("backed.qcow2"),
                                   NULL});
        expect_refused(at("backed.qcow2"), "qcow2 image names a backing file: refused");
        qemu_img_create((char *[]){"-f", "qcow2", "-o", "compat=0.10", "-F", "raw", "-b", (char *)at("secret"),
                                   (char *)at("backed-v2.qcow2"), NULL});
        expect_refused(at("backed-v2.qcow2"), "names a backing file");
}

static void test_qcow2_data_file(void **state) {
        unsigned char hdr[8];

        (void)state;
        qemu_img_create((char *[]){"-f", "qcow2", "-o", "data_file=data.raw,data_file_raw=on",
                                   (char *)at("data.qcow2"), "1M", NULL});
        expect_refused(at("data.qcow2"), "qcow2 image uses an external data file: refused");
        /* The extension alone, without the incompatible-feature bit, is refused too. */
        qemu_img_create((char *[]){"-f", "qcow2", (char *)at("ext.qcow2"), "1M", NULL});
        {
                sf_imgfmt_t fmt;
                char reason[256];
                int fd = open(at("ext.qcow2"), O_RDWR);
                unsigned char h[104], ext[16] = {0x44, 0x41, 0x54, 0x41, 0, 0, 0, 8, '/', 'e', 't', 'c', '/', 'x', 0, 0};
                uint32_t hl;

                assert_true(fd >= 0);
                assert_int_equal(pread(fd, h, sizeof(h), 0), (ssize_t)sizeof(h));
                hl = (uint32_t)h[100] << 24 | h[101] << 16 | h[102] << 8 | h[103];
                /* put "DATA" first; what was there shifts behind it */
                {
                        unsigned char rest[512];
                        assert_int_equal(pread(fd, rest, sizeof(rest), hl), (ssize_t)sizeof(rest));
                        assert_int_equal(pwrite(fd, ext, sizeof(ext), hl), (ssize_t)sizeof(ext));
                        assert_int_equal(pwrite(fd, rest, sizeof(rest), hl + sizeof(ext)), (ssize_t)sizeof(rest));
                }
                assert_int_equal(sf_imgfmt_detect_fd(fd, &fmt, reason, sizeof(reason)), -EMEDIUMTYPE);
                assert_non_null(strstr(reason, "external data file"));
                close(fd);
        }
        /* Unknown incompatible features: qemu would refuse them, so do we. */
        qemu_img_create((char *[]){"-f", "qcow2", (char *)at("feat.qcow2"), "1M", NULL});
        memcpy(hdr, "\0\0\0\0\0\0\x01\0", 8);
        write_at(at("feat.qcow2"), hdr, 8, 72);
        expect_refused(at("feat.qcow2"), "unknown features");
}

/* LUKS images are hand-marked: qemu-img's PBKDF benchmark fails on a busy machine. */
static void test_qcow2_encrypted(void **state) {
        unsigned char luks_method[4] = {0, 0, 0, 2};

        (void)state;
        qemu_img_create((char *[]){"-f", "qcow2", (char *)at("luks.qcow2"), "1M", NULL});
        write_at(at("luks.qcow2"), luks_method, 4, 32); /* crypt_method = 2 (LUKS) */
        expect_refused(at("luks.qcow2"), "qcow2 image is encrypted: refused");
        qemu_img_create((char *[]){"--object", "secret,id=s0,data=abc", "-f", "qcow2", "-o",
                                   "encrypt.format=aes,encrypt.key-secret=s0", (char *)at("aes.qcow2"), "1M", NULL});
        expect_refused(at("aes.qcow2"), "encrypted");
}

static void test_qcow2_versions(void **state) {
        unsigned char v[4] = {0, 0, 0, 4};

        (void)state;
        qemu_img_create((char *[]){"-f", "qcow2", (char *)at("v4.qcow2"), "1M", NULL});
        write_at(at("v4.qcow2"), v, 4, 4);
        expect_refused(at("v4.qcow2"), "qcow2 version 4 is not supported");
        qemu_img_create((char *[]){"-f", "qcow", (char *)at("v1.qcow"), "1M", NULL});
        expect_refused(at("v1.qcow"), "image is qcow (version 1)");
        write_file(at("short.qcow2"), "QFI\xfb\0\0\0\3", 8, 0);
        expect_refused(at("short.qcow2"), "truncated");
}

static void test_foreign_by_qemu_img(void **state) {
        static const struct {
                const char *fmt, *opts, *file, *why;
        } cases[] = {
                {"vmdk", NULL, "sparse.vmdk", "image is vmdk: only raw and qcow2 images are supported"},
                {"vmdk", "subformat=monolithicFlat", "desc.vmdk", "image is vmdk"},
                {"vmdk", "subformat=streamOptimized", "stream.vmdk", "image is vmdk"},
                {"vhdx", NULL, "a.vhdx", "image is vhdx"},
                {"vpc", NULL, "dyn.vhd", "image is vpc"},
                {"vpc", "subformat=fixed", "fixed.vhd", "image is vpc"},
                {"vdi", NULL, "a.vdi", "image is vdi"},
                {"qed", NULL, "a.qed", "image is qed"},
                {"parallels", NULL, "a.hds", "image is parallels"},
        };

        (void)state;
        for (size_t i = 0; i < SF_ARRAY_SIZE(cases); i++) {
                if (cases[i].opts)
                        qemu_img_create((char *[]){"-f", (char *)cases[i].fmt, "-o", (char *)cases[i].opts,
                                                   (char *)at(cases[i].file), "4M", NULL});
                else
                        qemu_img_create((char *[]){"-f", (char *)cases[i].fmt, (char *)at(cases[i].file), "4M", NULL});
                expect_refused(at(cases[i].file), cases[i].why);
        }
        write_file(at("a.luks"), "LUKS\xba\xbe\0\x01" "aes", 11, 1 << 20); /* magic, version 1, cipher */
        expect_refused(at("a.luks"), "image is luks");
}

static void test_foreign_hand_built(void **state) {
        unsigned char buf[4096];
        static const char desc[] = "# just a comment\n\n  \nversion=1\nCID=fffffffe\n"
                                   "RW 2048 FLAT \"/etc/shadow\" 0\n";

        (void)state;
        write_file(at("desc2.vmdk"), desc, sizeof(desc) - 1, 0);
        expect_refused(at("desc2.vmdk"), "image is vmdk");
        write_file(at("bochs.img"), "Bochs Virtual HD Image\0Redolog", 30, 1 << 16);
        expect_refused(at("bochs.img"), "image is bochs");
        write_file(at("a.cloop"), "#!/bin/sh\n#V2.0 Format\nmodprobe cloop file=$0", 45, 1 << 16);
        expect_refused(at("a.cloop"), "image is cloop");
        memset(buf, 0, sizeof(buf));
        write_file(at("a.dmg"), buf, sizeof(buf), 1 << 20);
        write_at(at("a.dmg"), "koly", 4, (1 << 20) - 512);
        expect_refused(at("a.dmg"), "image is dmg");
        write_file(at("old.vhd"), buf, sizeof(buf), 1 << 20);
        write_at(at("old.vhd"), "conectix", 8, (1 << 20) - 511);
        expect_refused(at("old.vhd"), "image is vpc");
        write_file(at("empty.img"), "", 0, 0);
        expect_ok(at("empty.img"), SF_IMGFMT_RAW); /* empty is raw */
        assert_int_equal(symlink(at("plain.qcow2"), at("link.qcow2")), 0);
        {
                sf_imgfmt_t fmt;
                char reason[64];
                assert_int_equal(sf_imgfmt_detect(at("link.qcow2"), &fmt, reason, sizeof(reason)), -ELOOP);
        }
}

static void test_raw(void **state) {
        unsigned char buf[65536];

        (void)state;
        /* random bytes: raw (a qcow2 magic by chance is cleared; vdi's is 4 bytes at 64) */
        assert_int_equal(sf_random_bytes(buf, sizeof(buf)), 0);
        memcpy(buf, "\0\0\0\0", 4);
        memset(buf + 64, 0, 4);
        write_file(at("random.img"), buf, sizeof(buf), 0);
        expect_ok(at("random.img"), SF_IMGFMT_RAW);
        /* an ISO 9660 image (a cdrom) is raw */
        memset(buf, 0, sizeof(buf));
        memcpy(buf + 0x8001, "CD001", 5);
        write_file(at("cd.iso"), buf, sizeof(buf), 0);
        expect_ok(at("cd.iso"), SF_IMGFMT_RAW);
        /* a raw disk that qemu-img converted from qcow2 */
        {
                char *argv[] = {"qemu-img", "convert", "-f", "qcow2", "-O", "raw", (char *)at("plain.qcow2"),
                                (char *)at("plain.raw"), NULL};
                assert_int_equal(sf_exec(argv, NULL, NULL), 0);
        }
        expect_ok(at("plain.raw"), SF_IMGFMT_RAW);
        assert_string_equal(sf_imgfmt_name(SF_IMGFMT_RAW), "raw");
        assert_string_equal(sf_imgfmt_name(SF_IMGFMT_QCOW2), "qcow2");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_qcow2),
                cmocka_unit_test(test_qcow2_backing),
                cmocka_unit_test(test_qcow2_data_file),
                cmocka_unit_test(test_qcow2_encrypted),
                cmocka_unit_test(test_qcow2_versions),
                cmocka_unit_test(test_foreign_by_qemu_img),
                cmocka_unit_test(test_foreign_hand_built),
                cmocka_unit_test(test_raw),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
