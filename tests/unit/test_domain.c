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
        assert_non_null(strstr(xml, "<domain type='kvm'>"));
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
                cmocka_unit_test(test_variants),
                cmocka_unit_test(test_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
