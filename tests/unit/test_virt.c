/* Unit tests for workers/compute/virt.c on libvirt's in-memory test:///default driver,
 * plus the domain-type detection. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../workers/compute/virt.h"
#include "util.h"

#define UUID "0f6a5b7e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"

/* The test driver only knows domain type 'test'. */
#define UUID2 "1f6a5b7e-2c3d-4e5f-8a9b-0c1d2e3f4a5b"

static const char *xml =
        "<domain type='test'>"
        "<name>sf:" UUID "</name><uuid>" UUID "</uuid>"
        "<metadata><sf:instance xmlns:sf='urn:sf:instance:1'><sf:node>node-a</sf:node></sf:instance></metadata>"
        "<memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        "<features><acpi/></features>"
        "</domain>";

static const char *xml2 =
        "<domain type='test'>"
        "<name>sf:" UUID2 "</name><uuid>" UUID2 "</uuid>"
        "<memory unit='MiB'>128</memory><vcpu>1</vcpu>"
        "<os><type arch='x86_64'>hvm</type></os>"
        "</domain>";

static void test_lifecycle(void **state) {
        virConnectPtr c = NULL;
        char **uuids = NULL;
        size_t n = 0;
        int st = -1;

        (void)state;
        /* Every test:///default connection has fresh state: one connection throughout. */
        assert_int_equal(sf_virt_open("test:///default", &c), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), -ENOENT);
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), 0);
        assert_int_equal(st, VIR_DOMAIN_RUNNING);
        /* Idempotent while running. */
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), 0);
        assert_int_equal(st, VIR_DOMAIN_RUNNING);

        /* The driver's built-in domain "test" is not ours. */
        assert_int_equal(sf_virt_list_sf(c, NULL, &uuids, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(uuids[0], UUID);
        sf_virt_strv_free(uuids, n);
        /* Only the node named in the domain's sf metadata owns it: another sf node
         * sharing this libvirtd (make run beside make test) must never see it. */
        assert_int_equal(sf_virt_list_sf(c, "node-a", &uuids, &n), 0);
        assert_int_equal(n, 1);
        sf_virt_strv_free(uuids, n);
        assert_int_equal(sf_virt_list_sf(c, "node-b", &uuids, &n), 0);
        assert_int_equal(n, 0);
        sf_virt_strv_free(uuids, n);
        /* A domain without our metadata belongs to no node. */
        assert_int_equal(sf_virt_define_start(c, xml2), 0);
        assert_int_equal(sf_virt_list_sf(c, NULL, &uuids, &n), 0);
        assert_int_equal(n, 2);
        sf_virt_strv_free(uuids, n);
        assert_int_equal(sf_virt_list_sf(c, "node-a", &uuids, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(uuids[0], UUID);
        sf_virt_strv_free(uuids, n);
        assert_int_equal(sf_virt_destroy_undefine(c, "sf:" UUID2), 0);

        assert_int_equal(sf_virt_destroy_undefine(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), -ENOENT);
        assert_int_equal(sf_virt_destroy_undefine(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_list_sf(c, NULL, &uuids, &n), 0);
        assert_int_equal(n, 0);
        sf_virt_strv_free(uuids, n);

        /* Defined but shut off: define_start starts it. */
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_destroy_undefine(c, "sf:" UUID), 0);

        assert_int_equal(sf_virt_define_start(c, "<domain>broken"), -EINVAL);
        sf_virt_strv_free(NULL, 0);
        sf_virt_close(c);
        sf_virt_close(NULL);
}

static bool cpu_has_virt(void) {
        char *info = NULL;
        size_t len = 0;
        bool yes;

        if (sf_file_read("/proc/cpuinfo", &info, &len) < 0)
                return false;
        yes = strstr(info, " vmx") || strstr(info, " svm");
        free(info);
        return yes;
}

/* Power operations (workers/compute/power.c uses them): each idempotent, -EAGAIN for
 * what a powered-off domain cannot do, -ENOENT without a domain. */
static void test_power(void **state) {
        virConnectPtr c = NULL;
        int st = -1;

        (void)state;
        assert_int_equal(sf_virt_open("test:///default", &c), 0);
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_suspend(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), 0);
        assert_string_equal(sf_virt_power_name(st), "paused");
        assert_int_equal(sf_virt_suspend(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_resume(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_resume(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), 0);
        assert_string_equal(sf_virt_power_name(st), "on");
        assert_int_equal(sf_virt_reboot(c, "sf:" UUID, true), 0);
        assert_int_equal(sf_virt_stop(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_stop(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), 0);
        assert_string_equal(sf_virt_power_name(st), "off");
        assert_int_equal(sf_virt_suspend(c, "sf:" UUID), -EAGAIN);
        assert_int_equal(sf_virt_resume(c, "sf:" UUID), -EAGAIN);
        assert_int_equal(sf_virt_reboot(c, "sf:" UUID, true), -EAGAIN);
        assert_int_equal(sf_virt_screenshot(c, "sf:" UUID, "/dev/null", NULL), -EAGAIN);
        assert_int_equal(sf_virt_start(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_start(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_state(c, "sf:" UUID, &st), 0);
        assert_int_equal(st, VIR_DOMAIN_RUNNING);
        assert_int_equal(sf_virt_start(c, "sf:" UUID2), -ENOENT);
        assert_int_equal(sf_virt_stop(c, "sf:" UUID2), -ENOENT);
        assert_null(sf_virt_power_name(VIR_DOMAIN_NOSTATE));
        assert_string_equal(sf_virt_power_name(VIR_DOMAIN_CRASHED), "crashed");
        assert_int_equal(sf_virt_destroy_undefine(c, "sf:" UUID), 0);
        sf_virt_close(c);
}

typedef struct {
        char uuid[SF_UUID_LEN];
        int events[8];
        int n;
} seen_t;

static void on_lifecycle(const char *uuid, int event, void *opaque) {
        seen_t *s = opaque;

        snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
        if (s->n < 8)
                s->events[s->n++] = event;
}

/* Lifecycle events of sf domains reach the callback through the event loop thread. */
static void test_events(void **state) {
        virConnectPtr c = NULL;
        seen_t seen = {0};
        int id = -1;

        (void)state;
        assert_int_equal(sf_virt_events_init(), 0);
        assert_int_equal(sf_virt_events_start(), 0);
        assert_int_equal(sf_virt_open("test:///default", &c), 0);
        assert_int_equal(sf_virt_watch(c, on_lifecycle, NULL, &seen, &id), 0);
        assert_int_equal(sf_virt_define_start(c, xml), 0);
        assert_int_equal(sf_virt_suspend(c, "sf:" UUID), 0);
        assert_int_equal(sf_virt_stop(c, "sf:" UUID), 0);
        for (int i = 0; i < 200 && seen.n < 4; i++)
                usleep(10 * 1000);
        assert_string_equal(seen.uuid, UUID);
        /* defined, started, suspended, stopped: in order */
        assert_true(seen.n >= 4);
        assert_int_equal(seen.events[seen.n - 2], VIR_DOMAIN_EVENT_SUSPENDED);
        assert_int_equal(seen.events[seen.n - 1], VIR_DOMAIN_EVENT_STOPPED);
        sf_virt_unwatch(c, id, NULL);
        assert_int_equal(sf_virt_destroy_undefine(c, "sf:" UUID), 0);
        sf_virt_close(c);
        sf_virt_events_stop();
}

static void test_detect_type(void **state) {
        char t[8];

        (void)state;
        assert_int_equal(sf_virt_detect_type("kvm", t), 0);
        assert_string_equal(t, "kvm");
        assert_int_equal(sf_virt_detect_type("qemu", t), 0);
        assert_string_equal(t, "qemu");
        assert_int_equal(sf_virt_detect_type("xen", t), -EINVAL);
        assert_int_equal(sf_virt_detect_type("auto", t), 0);
        assert_true(strcmp(t, "kvm") == 0 || strcmp(t, "qemu") == 0);
        printf("auto-detected domain type: %s\n", t);
        /* Where the probe cannot succeed, auto must fall back to TCG: no /dev/kvm, or a
         * /dev/kvm without vmx/svm (PVM, environment.md §4), which runs no normal guest. */
        if (access("/dev/kvm", R_OK | W_OK) != 0 || !cpu_has_virt())
                assert_string_equal(t, "qemu");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_lifecycle),
                cmocka_unit_test(test_power),
                cmocka_unit_test(test_events),
                cmocka_unit_test(test_detect_type),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
