/* Unit tests for workers/compute/domain.c: golden-file rendering of the domain XML. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../workers/compute/domain.h"
#include "util.h"

#define UUID "0f6a5b7e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"

static void basic_spec(sf_domain_spec_t *s, sf_domain_disk_t disks[2], sf_domain_nic_t nics[1]) {
        memset(s, 0, sizeof(*s));
        memset(disks, 0, 2 * sizeof(*disks));
        memset(nics, 0, sizeof(*nics));
        snprintf(s->uuid, sizeof(s->uuid), UUID);
        snprintf(s->name, sizeof(s->name), "web-1");
        snprintf(s->node, sizeof(s->node), "node1");
        snprintf(s->domain_type, sizeof(s->domain_type), "qemu");
        snprintf(s->machine, sizeof(s->machine), "pc");
        s->memory_mib = 1024;
        s->vcpus = 2;
        snprintf(s->console_log, sizeof(s->console_log), "/srv/sf/instances/" UUID "/console.log");
        snprintf(disks[0].device, sizeof(disks[0].device), "vda");
        snprintf(disks[0].bus, sizeof(disks[0].bus), "virtio");
        snprintf(disks[0].path, sizeof(disks[0].path), "/srv/sf/instances/" UUID "/vda");
        snprintf(disks[0].format, sizeof(disks[0].format), "qcow2");
        snprintf(disks[0].backing, sizeof(disks[0].backing),
                 "/srv/sf/image_cache/1b4e28ba-2fa1-11d2-883f-0016d3cca427.qcow2");
        snprintf(disks[0].backing_format, sizeof(disks[0].backing_format), "qcow2");
        snprintf(disks[0].type, sizeof(disks[0].type), "disk");
        /* Device 1 is the config drive: raw, same bus as disk 0 (api.md §6.1). */
        snprintf(disks[1].device, sizeof(disks[1].device), "vdb");
        snprintf(disks[1].bus, sizeof(disks[1].bus), "virtio");
        snprintf(disks[1].path, sizeof(disks[1].path), "/srv/sf/instances/" UUID "/vdb");
        snprintf(disks[1].format, sizeof(disks[1].format), "raw");
        snprintf(disks[1].type, sizeof(disks[1].type), "disk");
        snprintf(nics[0].mac, sizeof(nics[0].mac), "02:00:00:12:34:56");
        snprintf(nics[0].bridge, sizeof(nics[0].bridge), "br-vxlan-00beef");
        snprintf(nics[0].model, sizeof(nics[0].model), "virtio");
        nics[0].mtu = 1450;
        s->disks = disks;
        s->ndisks = 2;
        s->nics = nics;
        s->nnics = 1;
}

/* xml equals tests/golden/<name>; a mismatch leaves the rendering in /tmp for a diff. */
static void golden_check(const char *xml, const char *name) {
        char path[256], actual[256];
        char *golden = NULL;
        size_t len = 0;

        snprintf(path, sizeof(path), "tests/golden/%s", name);
        snprintf(actual, sizeof(actual), "/tmp/%s.actual", name);
        if (sf_file_read(path, &golden, &len) < 0 || strcmp(xml, golden) != 0) {
                sf_file_write_atomic(actual, xml, strlen(xml), 0644);
                fprintf(stderr, "golden mismatch: diff %s %s\n", path, actual);
        }
        assert_non_null(golden);
        assert_string_equal(xml, golden);
        free(golden);
}

#define DIR "/srv/sf/instances/" UUID

/* Every create option at once (api.md §6.1, §7.2): a sata cdrom with an image, an empty
 * usb cdrom, an nvme disk (qemu arguments), two NICs with their models, the telnet
 * serial console and vnc on loopback ports, video, UEFI and two side channels. */
static void test_golden_options(void **state) {
        sf_domain_spec_t s;
        sf_domain_disk_t disks[6];
        sf_domain_nic_t nics[2];
        char *xml = NULL;

        (void)state;
        basic_spec(&s, disks, nics);
        memset(&disks[2], 0, 4 * sizeof(*disks));
        snprintf(disks[2].device, sizeof(disks[2].device), "vdc");
        snprintf(disks[2].bus, sizeof(disks[2].bus), "virtio");
        snprintf(disks[2].path, sizeof(disks[2].path), DIR "/vdc.qcow2");
        snprintf(disks[2].format, sizeof(disks[2].format), "qcow2");
        snprintf(disks[2].type, sizeof(disks[2].type), "disk");
        snprintf(disks[3].device, sizeof(disks[3].device), "sdd");
        snprintf(disks[3].bus, sizeof(disks[3].bus), "sata");
        snprintf(disks[3].path, sizeof(disks[3].path), "/srv/sf/blobs/ab/abcd.iso");
        snprintf(disks[3].format, sizeof(disks[3].format), "raw");
        snprintf(disks[3].type, sizeof(disks[3].type), "cdrom");
        disks[3].readonly = true;
        snprintf(disks[4].device, sizeof(disks[4].device), "sde");
        snprintf(disks[4].bus, sizeof(disks[4].bus), "usb");
        snprintf(disks[4].format, sizeof(disks[4].format), "raw");
        snprintf(disks[4].type, sizeof(disks[4].type), "cdrom");
        disks[4].readonly = true;
        snprintf(disks[5].device, sizeof(disks[5].device), "nvme5");
        snprintf(disks[5].bus, sizeof(disks[5].bus), "nvme");
        snprintf(disks[5].path, sizeof(disks[5].path), DIR "/nvme5.qcow2");
        snprintf(disks[5].format, sizeof(disks[5].format), "qcow2");
        snprintf(disks[5].type, sizeof(disks[5].type), "disk");
        s.ndisks = 6;
        nics[1] = nics[0];
        snprintf(nics[1].mac, sizeof(nics[1].mac), "02:00:00:12:34:57");
        snprintf(nics[1].model, sizeof(nics[1].model), "e1000");
        s.nnics = 2;
        snprintf(s.listen, sizeof(s.listen), "127.0.0.1");
        s.console_port = 30001;
        snprintf(s.vdi, sizeof(s.vdi), "vnc");
        s.vdi_port = 30002;
        snprintf(s.video_model, sizeof(s.video_model), "vga");
        s.video_vram_kib = 16384;
        s.uefi = true;
        snprintf(s.loader, sizeof(s.loader), "/usr/share/OVMF/OVMF_CODE_4M.fd");
        snprintf(s.nvram_template, sizeof(s.nvram_template), "/usr/share/OVMF/OVMF_VARS_4M.fd");
        snprintf(s.nvram, sizeof(s.nvram), DIR "/nvram");
        snprintf(s.channel_dir, sizeof(s.channel_dir), DIR);
        snprintf(s.side_channels[0], sizeof(s.side_channels[0]), "sf-agent");
        snprintf(s.side_channels[1], sizeof(s.side_channels[1]), "org.example.x");
        s.nside_channels = 2;
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), 0);
        golden_check(xml, "domain-options.xml");
        free(xml);
}

/* spice with and without TLS, spiceconcurrent's environment, secure boot's q35 + SMM. */
static void test_spice_secure_boot(void **state) {
        sf_domain_spec_t s;
        sf_domain_disk_t disks[2];
        sf_domain_nic_t nics[1];
        char *xml = NULL;

        (void)state;
        basic_spec(&s, disks, nics);
        snprintf(s.listen, sizeof(s.listen), "127.0.0.1");
        snprintf(s.vdi, sizeof(s.vdi), "spice");
        s.vdi_port = 31000;
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), 0);
        assert_non_null(strstr(xml, "<graphics type='spice' port='31000' autoport='no' listen='127.0.0.1'>"));
        assert_non_null(strstr(xml, "<channel type='spicevmc'>"));
        assert_null(strstr(xml, "tlsPort"));
        assert_null(strstr(xml, "qemu:commandline"));
        /* No console port: the pty console, still logged. */
        assert_non_null(strstr(xml, "<serial type='pty'>"));
        free(xml);

        s.vdi_tls_port = 31001;
        snprintf(s.vdi, sizeof(s.vdi), "spiceconcurrent");
        s.uefi = s.secure_boot = true;
        snprintf(s.machine, sizeof(s.machine), "q35");
        snprintf(s.loader, sizeof(s.loader), "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd");
        snprintf(s.nvram_template, sizeof(s.nvram_template), "/usr/share/OVMF/OVMF_VARS_4M.ms.fd");
        snprintf(s.nvram, sizeof(s.nvram), DIR "/nvram");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), 0);
        assert_non_null(strstr(xml, "port='31000' tlsPort='31001' defaultMode='secure' autoport='no'"));
        assert_non_null(strstr(xml, "<qemu:env name='SPICE_DEBUG_ALLOW_MC' value='1'/>"));
        assert_non_null(strstr(xml, "<qemu:arg value='ICH9-LPC.disable_s3=1'/>"));
        assert_non_null(strstr(xml, "<smm state='on'>"));
        assert_non_null(strstr(xml, "machine='q35'"));
        assert_non_null(strstr(xml, "<loader readonly='yes' secure='yes' type='pflash'>"
                                    "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd</loader>"));
        assert_non_null(strstr(xml, "<nvram template='/usr/share/OVMF/OVMF_VARS_4M.ms.fd'>" DIR "/nvram</nvram>"));
        free(xml);

        /* Secure boot needs UEFI and q35; a graphics port needs an address. */
        snprintf(s.machine, sizeof(s.machine), "pc");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), -EINVAL);
        snprintf(s.machine, sizeof(s.machine), "q35");
        snprintf(s.listen, sizeof(s.listen), "0.0.0.0'/>");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), -EINVAL);
        snprintf(s.listen, sizeof(s.listen), "127.0.0.1");
        snprintf(s.side_channels[0], sizeof(s.side_channels[0]), "../x");
        s.nside_channels = 1;
        snprintf(s.channel_dir, sizeof(s.channel_dir), DIR);
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), -EINVAL);
}

static void test_golden(void **state) {
        sf_domain_spec_t s;
        sf_domain_disk_t disks[2];
        sf_domain_nic_t nics[1];
        char *xml = NULL, *golden = NULL;
        size_t len = 0;

        (void)state;
        setenv("SF_TEMPLATES", "templates", 1); /* tests run from the repo root */
        basic_spec(&s, disks, nics);
        assert_int_equal(sf_domain_xml(&s, NULL, &xml), 0);
        assert_int_equal(sf_file_read("tests/golden/domain-basic.xml", &golden, &len), 0);
        if (strcmp(xml, golden) != 0) {
                /* Leave the rendering behind for a diff. */
                sf_file_write_atomic("/tmp/domain-basic.actual.xml", xml, strlen(xml), 0644);
                fprintf(stderr, "golden mismatch: diff tests/golden/domain-basic.xml /tmp/domain-basic.actual.xml\n");
        }
        assert_string_equal(xml, golden);
        free(xml);
        free(golden);
}

static void test_variants(void **state) {
        sf_domain_spec_t s;
        sf_domain_disk_t disks[2];
        sf_domain_nic_t nics[1];
        char *xml = NULL;

        (void)state;
        basic_spec(&s, disks, nics);
        /* KVM gets host-passthrough; TCG (golden) must not. */
        snprintf(s.domain_type, sizeof(s.domain_type), "kvm");
        snprintf(disks[1].type, sizeof(disks[1].type), "cdrom");
        snprintf(disks[1].bus, sizeof(disks[1].bus), "sata");
        disks[1].readonly = true;
        s.cache_writeback = true;
        s.nnics = 0;
        snprintf(s.name, sizeof(s.name), "a<b&'c");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), 0);
        assert_non_null(strstr(xml, "<domain type='kvm' "));
        assert_non_null(strstr(xml, "<cpu mode='host-passthrough'/>"));
        assert_non_null(strstr(xml, "<disk type='file' device='cdrom'>"));
        assert_non_null(strstr(xml, "<readonly/>"));
        assert_non_null(strstr(xml, "cache='writeback'"));
        assert_non_null(strstr(xml, "<title>a&lt;b&amp;&apos;c</title>"));
        assert_null(strstr(xml, "<interface"));
        free(xml);

        char name[64];
        sf_domain_name(UUID, name);
        assert_string_equal(name, "sf:" UUID);
}

static void test_invalid(void **state) {
        sf_domain_spec_t s;
        sf_domain_disk_t disks[2];
        sf_domain_nic_t nics[1];
        char *xml = (char *)0x1;

        (void)state;
        basic_spec(&s, disks, nics);
        snprintf(s.domain_type, sizeof(s.domain_type), "xen");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), -EINVAL);
        basic_spec(&s, disks, nics);
        snprintf(disks[0].format, sizeof(disks[0].format), "vmdk");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), -EINVAL);
        basic_spec(&s, disks, nics);
        snprintf(disks[0].device, sizeof(disks[0].device), "vd'a");
        assert_int_equal(sf_domain_xml(&s, "templates", &xml), -EINVAL);
        basic_spec(&s, disks, nics);
        assert_int_equal(sf_domain_xml(&s, "/nonexistent", &xml), -ENOENT);
        assert_ptr_equal(xml, (char *)0x1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_golden),
                cmocka_unit_test(test_golden_options),
                cmocka_unit_test(test_spice_secure_boot),
                cmocka_unit_test(test_variants),
                cmocka_unit_test(test_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
