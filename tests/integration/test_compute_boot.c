/* Integration: the compute pieces together on the real libvirt qemu driver, under TCG.
 * A 512-byte boot sector that prints a marker on COM1 is turned into a qcow2 base,
 * overlaid, given a config drive, rendered into a domain from templates/, started,
 * and the marker must show up in the pty serial log that virtlogd writes.
 * Skipped when libvirtd is not reachable. */
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

#include "../../workers/compute/configdrive.h"
#include "../../workers/compute/disk.h"
#include "../../workers/compute/domain.h"
#include "../../workers/compute/virt.h"
#include "exec.h"
#include "util.h"

#define MARKER "SF-SERIAL-OK"

/* Real mode at 0x7c00: ds=0; print the string at 0x7c16 on port 0x3f8; hlt forever. */
static const uint8_t bootsector[] = {
        0x31, 0xc0, 0x8e, 0xd8, 0xfc,         /* xor ax,ax; mov ds,ax; cld */
        0xba, 0xf8, 0x03,                     /* mov dx,0x3f8 */
        0xbe, 0x16, 0x7c,                     /* mov si,0x7c16 */
        0xac, 0x84, 0xc0, 0x74, 0x03,         /* lodsb; test al,al; jz +3 */
        0xee, 0xeb, 0xf8,                     /* out dx,al; jmp lodsb */
        0xf4, 0xeb, 0xfd,                     /* hlt; jmp hlt */
        'S', 'F', '-', 'S', 'E', 'R', 'I', 'A', 'L', '-', 'O', 'K', '\r', '\n', 0,
};

static void test_boot(void **state) {
        char dir[] = "/var/lib/libvirt/images/sf-itest-XXXXXX";
        char raw[256], base[256], vda[256], vdb[256], log[256], name[64], type[8];
        uint8_t sector[512] = {0};
        virConnectPtr c = NULL;
        sf_domain_spec_t spec;
        sf_domain_disk_t disks[2];
        sf_configdrive_t cd;
        char *xml = NULL;
        bool seen = false;
        int st;

        (void)state;
        if (sf_virt_open("qemu:///system", &c) < 0) {
                skip();
        }
        assert_int_equal(sf_mkdir_p("/var/lib/libvirt/images", 0755), 0);
        assert_non_null(mkdtemp(dir));
        chmod(dir, 0755); /* qemu runs as libvirt-qemu */
        snprintf(raw, sizeof(raw), "%s/boot.raw", dir);
        snprintf(base, sizeof(base), "%s/base.qcow2", dir);
        snprintf(vda, sizeof(vda), "%s/vda", dir);
        snprintf(vdb, sizeof(vdb), "%s/vdb", dir);
        snprintf(log, sizeof(log), "%s/console.log", dir);

        memcpy(sector, bootsector, sizeof(bootsector));
        sector[510] = 0x55;
        sector[511] = 0xaa;
        assert_int_equal(sf_file_write_atomic(raw, sector, sizeof(sector), 0644), 0);
        char *conv[] = {"qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, base, NULL};
        assert_int_equal(sf_exec(conv, NULL, NULL), 0);
        assert_int_equal(sf_disk_overlay(base, vda, 1), 0);

        memset(&cd, 0, sizeof(cd));
        memset(&spec, 0, sizeof(spec));
        memset(disks, 0, sizeof(disks));
        sf_uuid_new(cd.uuid);
        snprintf(cd.name, sizeof(cd.name), "itest");
        snprintf(cd.zone, sizeof(cd.zone), "sf");
        cd.mtu = 1450;
        assert_int_equal(sf_configdrive_build(&cd, vdb), 0);

        assert_int_equal(sf_virt_detect_type("auto", type), 0);
        snprintf(spec.uuid, sizeof(spec.uuid), "%s", cd.uuid);
        snprintf(spec.name, sizeof(spec.name), "itest");
        snprintf(spec.domain_type, sizeof(spec.domain_type), "%s", type);
        snprintf(spec.machine, sizeof(spec.machine), "pc");
        spec.memory_mib = 64;
        spec.vcpus = 1;
        snprintf(spec.console_log, sizeof(spec.console_log), "%s", log);
        snprintf(disks[0].device, 16, "vda");
        snprintf(disks[0].bus, 16, "virtio");
        snprintf(disks[0].path, 4096, "%s", vda);
        snprintf(disks[0].format, 8, "qcow2");
        snprintf(disks[0].backing, 4096, "%s", base);
        snprintf(disks[0].backing_format, 8, "qcow2");
        snprintf(disks[0].type, 8, "disk");
        snprintf(disks[1].device, 16, "vdb");
        snprintf(disks[1].bus, 16, "virtio");
        snprintf(disks[1].path, 4096, "%s", vdb);
        snprintf(disks[1].format, 8, "raw");
        snprintf(disks[1].type, 8, "disk");
        spec.disks = disks;
        spec.ndisks = 2;
        setenv("SF_TEMPLATES", "templates", 0);
        assert_int_equal(sf_domain_xml(&spec, NULL, &xml), 0);

        sf_domain_name(spec.uuid, name);
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_state(c, name, &st), 0);
        assert_int_equal(st, VIR_DOMAIN_RUNNING);
        for (int i = 0; i < 600 && !seen; i++) {
                char *data = NULL;
                size_t len = 0;
                if (sf_file_read(log, &data, &len) == 0) {
                        seen = strstr(data, MARKER) != NULL;
                        free(data);
                }
                if (!seen)
                        usleep(100 * 1000);
        }
        assert_int_equal(sf_virt_destroy_undefine(c, name), 0);
        assert_int_equal(sf_virt_state(c, name, &st), -ENOENT);
        sf_virt_close(c);
        free(xml);
        sf_rm_rf(dir);
        assert_true(seen);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_boot),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
