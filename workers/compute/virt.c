#include "virt.h"

#include "domain.h"

#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <libvirt/virterror.h>

static void virt_quiet(void *opaque, virErrorPtr err) {
        (void)opaque;
        (void)err; /* callers log what matters; don't let libvirt print to stderr */
}

static const char *virt_msg(void) {
        const char *m = virGetLastErrorMessage();
        return m ? m : "unknown libvirt error";
}

static int virt_code(void) {
        virErrorPtr e = virGetLastError();
        return e ? e->code : VIR_ERR_OK;
}

static void domain_freep(virDomainPtr *d) {
        if (*d)
                virDomainFree(*d);
}
#define _cleanup_domain_ __attribute__((cleanup(domain_freep)))

int sf_virt_open(const char *uri, virConnectPtr *ret) {
        virConnectPtr c;

        virSetErrorFunc(NULL, virt_quiet);
        c = virConnectOpen(uri);
        if (!c) {
                log_err("libvirt: cannot connect to %s: %s", uri ? uri : "(default)", virt_msg());
                return -ECONNREFUSED;
        }
        *ret = c;
        return 0;
}

void sf_virt_close(virConnectPtr c) {
        if (c)
                virConnectClose(c);
}

int sf_virt_ensure_alive(const char *uri, virConnectPtr *conn) {
        unsigned long ver = 0;

        /* IsAlive alone misses a restart while we were idle (no event loop watches the
         * socket); one cheap round trip finds it. */
        if (*conn && virConnectIsAlive(*conn) == 1 && virConnectGetLibVersion(*conn, &ver) == 0)
                return 0;
        if (*conn)
                log_warn("libvirt: connection lost (%s); reconnecting", virt_msg());
        sf_virt_close(*conn);
        *conn = NULL;
        return sf_virt_open(uri, conn);
}

int sf_virt_define_start(virConnectPtr c, const char *xml) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int state = 0, reason = 0;
        const char *name;

        if (!c || !xml)
                return -EINVAL;
        d = virDomainDefineXML(c, xml);
        if (!d) {
                log_err("libvirt: define failed: %s", virt_msg());
                return -EINVAL;
        }
        name = virDomainGetName(d);
        /* Come back after a host reboot; the reconciler still decides what stays. */
        if (virDomainSetAutostart(d, 1) < 0)
                log_warn("libvirt: %s: cannot set autostart: %s", name, virt_msg());
        if (virDomainGetState(d, &state, &reason, 0) < 0) {
                log_err("libvirt: %s: cannot get state: %s", name, virt_msg());
                return -EIO;
        }
        if (state == VIR_DOMAIN_RUNNING)
                return 0;
        if (state == VIR_DOMAIN_PAUSED) {
                if (virDomainResume(d) < 0) {
                        log_err("libvirt: %s: resume failed: %s", name, virt_msg());
                        return -EIO;
                }
                return 0;
        }
        if (virDomainCreate(d) < 0) {
                /* Lost a race with another start: that is what we wanted. */
                if (virt_code() == VIR_ERR_OPERATION_INVALID && virDomainIsActive(d) == 1)
                        return 0;
                log_err("libvirt: %s: start failed: %s", name, virt_msg());
                return -EIO;
        }
        log_info("libvirt: %s started", name);
        return 0;
}

int sf_virt_state(virConnectPtr c, const char *name, int *ret_state) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int state = 0, reason = 0;

        if (!c || !name || !ret_state)
                return -EINVAL;
        d = virDomainLookupByName(c, name);
        if (!d) {
                if (virt_code() == VIR_ERR_NO_DOMAIN)
                        return -ENOENT;
                log_err("libvirt: lookup %s failed: %s", name, virt_msg());
                return -EIO;
        }
        if (virDomainGetState(d, &state, &reason, 0) < 0) {
                if (virt_code() == VIR_ERR_NO_DOMAIN)
                        return -ENOENT;
                log_err("libvirt: %s: cannot get state: %s", name, virt_msg());
                return -EIO;
        }
        *ret_state = state;
        return 0;
}

int sf_virt_destroy_undefine(virConnectPtr c, const char *name) {
        _cleanup_domain_ virDomainPtr d = NULL;
        const unsigned flags = VIR_DOMAIN_UNDEFINE_MANAGED_SAVE | VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                               VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA | VIR_DOMAIN_UNDEFINE_NVRAM;

        if (!c || !name)
                return -EINVAL;
        d = virDomainLookupByName(c, name);
        if (!d) {
                if (virt_code() == VIR_ERR_NO_DOMAIN)
                        return 0;
                log_err("libvirt: lookup %s failed: %s", name, virt_msg());
                return -EIO;
        }
        if (virDomainIsActive(d) == 1 && virDomainDestroy(d) < 0) {
                /* Stopped or vanished meanwhile: fine. */
                if (virt_code() == VIR_ERR_NO_DOMAIN)
                        return 0;
                if (virt_code() != VIR_ERR_OPERATION_INVALID) {
                        log_err("libvirt: %s: destroy failed: %s", name, virt_msg());
                        return -EIO;
                }
        }
        /* A transient domain is gone once destroyed. */
        if (virDomainIsPersistent(d) != 1)
                return 0;
        if (virDomainUndefineFlags(d, flags) < 0) {
                if (virt_code() == VIR_ERR_NO_DOMAIN)
                        return 0;
                /* Drivers without nvram/checkpoint support reject those flags. */
                if (virDomainUndefine(d) < 0 && virt_code() != VIR_ERR_NO_DOMAIN) {
                        log_err("libvirt: %s: undefine failed: %s", name, virt_msg());
                        return -EIO;
                }
        }
        log_info("libvirt: %s destroyed and undefined", name);
        return 0;
}

void sf_virt_strv_free(char **v, size_t n) {
        if (!v)
                return;
        for (size_t i = 0; i < n; i++)
                free(v[i]);
        free(v);
}

/* The node recorded in the domain's sf metadata element, "" if none. */
static void domain_node(virDomainPtr d, char *out, size_t len) {
        char *xml = virDomainGetMetadata(d, VIR_DOMAIN_METADATA_ELEMENT, SF_DOMAIN_METADATA_NS, 0);
        const char *p, *end;

        out[0] = 0;
        if (!xml) {
                virResetLastError();
                return;
        }
        /* libvirt hands the element back with a prefix of its choosing: match ":node>". */
        p = strstr(xml, "node>");
        end = p ? strchr(p + 5, '<') : NULL;
        if (p && end && (size_t)(end - (p + 5)) < len) {
                memcpy(out, p + 5, (size_t)(end - (p + 5)));
                out[end - (p + 5)] = 0;
        }
        free(xml);
}

int sf_virt_list_sf(virConnectPtr c, const char *node, char ***ret_uuids, size_t *ret_n) {
        virDomainPtr *doms = NULL;
        char **uuids = NULL;
        size_t n = 0;
        int count, r = 0;

        if (!c || !ret_uuids || !ret_n)
                return -EINVAL;
        count = virConnectListAllDomains(c, &doms, 0);
        if (count < 0) {
                log_err("libvirt: cannot list domains: %s", virt_msg());
                return -EIO;
        }
        uuids = calloc((size_t)count + 1, sizeof(*uuids));
        if (!uuids) {
                r = -ENOMEM;
                goto cleanup;
        }
        for (int i = 0; i < count; i++) {
                const char *name = virDomainGetName(doms[i]);
                char uuid[SF_UUID_LEN];

                if (!name || strncmp(name, "sf:", 3) != 0 || !sf_uuid_parse(name + 3, uuid))
                        continue;
                if (node) {
                        char owner[128];
                        domain_node(doms[i], owner, sizeof(owner));
                        if (strcmp(owner, node) != 0)
                                continue; /* another sf node's (or nobody's): never ours to touch */
                }
                uuids[n] = strdup(uuid);
                if (!uuids[n]) {
                        r = -ENOMEM;
                        goto cleanup;
                }
                n++;
        }
cleanup:
        for (int i = 0; i < count; i++)
                virDomainFree(doms[i]);
        free(doms);
        if (r < 0) {
                sf_virt_strv_free(uuids, n);
                return r;
        }
        *ret_uuids = uuids;
        *ret_n = n;
        return 0;
}

/* ---- power ---- */

/* The named domain, -ENOENT if there is none, -EIO if libvirt cannot say. */
static int domain_lookup(virConnectPtr c, const char *name, virDomainPtr *ret) {
        virDomainPtr d;

        if (!c || !name)
                return -EINVAL;
        d = virDomainLookupByName(c, name);
        if (!d) {
                if (virt_code() == VIR_ERR_NO_DOMAIN)
                        return -ENOENT;
                log_err("libvirt: lookup %s failed: %s", name, virt_msg());
                return -EIO;
        }
        *ret = d;
        return 0;
}

static int domain_state(virDomainPtr d, int *ret) {
        int state = 0, reason = 0;

        if (virDomainGetState(d, &state, &reason, 0) < 0)
                return virt_code() == VIR_ERR_NO_DOMAIN ? -ENOENT : -EIO;
        *ret = state;
        return 0;
}

static bool state_active(int state) {
        return state != VIR_DOMAIN_SHUTOFF && state != VIR_DOMAIN_CRASHED && state != VIR_DOMAIN_NOSTATE;
}

int sf_virt_start(virConnectPtr c, const char *name) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r, state;

        r = domain_lookup(c, name, &d);
        if (r == 0)
                r = domain_state(d, &state);
        if (r < 0)
                return r;
        if (state == VIR_DOMAIN_PAUSED || state == VIR_DOMAIN_PMSUSPENDED)
                return sf_virt_resume(c, name);
        if (state_active(state))
                return 0;
        if (virDomainCreate(d) < 0) {
                if (virt_code() == VIR_ERR_OPERATION_INVALID && virDomainIsActive(d) == 1)
                        return 0; /* a concurrent start won */
                log_err("libvirt: %s: start failed: %s", name, virt_msg());
                return -EIO;
        }
        if (virDomainSetAutostart(d, 1) < 0)
                log_warn("libvirt: %s: cannot set autostart: %s", name, virt_msg());
        return 0;
}

int sf_virt_stop(virConnectPtr c, const char *name) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r, state;

        r = domain_lookup(c, name, &d);
        if (r == 0)
                r = domain_state(d, &state);
        if (r < 0)
                return r;
        if (!state_active(state))
                return 0;
        if (virDomainDestroy(d) < 0 && virt_code() != VIR_ERR_OPERATION_INVALID) {
                log_err("libvirt: %s: destroy failed: %s", name, virt_msg());
                return virt_code() == VIR_ERR_NO_DOMAIN ? -ENOENT : -EIO;
        }
        /* A user's power off must stay off across a host reboot (upstream: poweron sets it). */
        if (virDomainIsPersistent(d) == 1 && virDomainSetAutostart(d, 0) < 0)
                log_warn("libvirt: %s: cannot clear autostart: %s", name, virt_msg());
        return 0;
}

int sf_virt_reboot(virConnectPtr c, const char *name, bool hard) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r;

        r = domain_lookup(c, name, &d);
        if (r < 0)
                return r;
        r = hard ? virDomainReset(d, 0) : virDomainReboot(d, 0);
        if (r < 0) {
                if (virt_code() == VIR_ERR_OPERATION_INVALID)
                        return -EAGAIN; /* not running */
                log_err("libvirt: %s: %s reboot failed: %s", name, hard ? "hard" : "soft", virt_msg());
                return -EIO;
        }
        return 0;
}

int sf_virt_suspend(virConnectPtr c, const char *name) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r, state;

        r = domain_lookup(c, name, &d);
        if (r == 0)
                r = domain_state(d, &state);
        if (r < 0)
                return r;
        if (state == VIR_DOMAIN_PAUSED)
                return 0;
        if (!state_active(state))
                return -EAGAIN;
        if (virDomainSuspend(d) < 0) {
                log_err("libvirt: %s: suspend failed: %s", name, virt_msg());
                return -EIO;
        }
        return 0;
}

int sf_virt_resume(virConnectPtr c, const char *name) {
        _cleanup_domain_ virDomainPtr d = NULL;
        int r, state;

        r = domain_lookup(c, name, &d);
        if (r == 0)
                r = domain_state(d, &state);
        if (r < 0)
                return r;
        if (!state_active(state))
                return -EAGAIN;
        if (state != VIR_DOMAIN_PAUSED && state != VIR_DOMAIN_PMSUSPENDED)
                return 0;
        if ((state == VIR_DOMAIN_PAUSED ? virDomainResume(d) : virDomainPMWakeup(d, 0)) < 0) {
                log_err("libvirt: %s: resume failed: %s", name, virt_msg());
                return -EIO;
        }
        return 0;
}

const char *sf_virt_power_name(int state) {
        switch (state) {
        case VIR_DOMAIN_RUNNING:
        case VIR_DOMAIN_BLOCKED:
        case VIR_DOMAIN_SHUTDOWN: /* still running while the guest shuts down */
                return "on";
        case VIR_DOMAIN_PAUSED:
        case VIR_DOMAIN_PMSUSPENDED:
                return "paused";
        case VIR_DOMAIN_SHUTOFF:
                return "off";
        case VIR_DOMAIN_CRASHED:
                return "crashed";
        default:
                return NULL;
        }
}

static int stream_sink(virStreamPtr st, const char *data, size_t n, void *opaque) {
        int fd = *(int *)opaque;

        (void)st;
        for (size_t off = 0; off < n;) {
                ssize_t w = write(fd, data + off, n - off);
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return -1;
                off += (size_t)w;
        }
        return (int)n;
}

int sf_virt_screenshot(virConnectPtr c, const char *name, const char *path, char ret_mime[64]) {
        _cleanup_domain_ virDomainPtr d = NULL;
        _cleanup_close_ int fd = -1;
        virStreamPtr st = NULL;
        char *mime = NULL;
        int r, state;

        r = domain_lookup(c, name, &d);
        if (r == 0)
                r = domain_state(d, &state);
        if (r < 0)
                return r;
        if (state != VIR_DOMAIN_RUNNING && state != VIR_DOMAIN_PAUSED && state != VIR_DOMAIN_BLOCKED)
                return -EAGAIN;
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        st = virStreamNew(c, 0);
        if (!st)
                return -ENOMEM;
        mime = virDomainScreenshot(d, st, 0, 0);
        if (!mime) {
                /* OPERATION_INVALID: stopped meanwhile, or no video device ("no screens"). */
                r = virt_code() == VIR_ERR_OPERATION_INVALID ? (virDomainIsActive(d) == 1 ? -ENODEV : -EAGAIN) : -EIO;
                log_warn("libvirt: %s: screenshot failed: %s", name, virt_msg());
                goto cleanup;
        }
        if (virStreamRecvAll(st, stream_sink, &fd) < 0 || virStreamFinish(st) < 0) {
                log_err("libvirt: %s: screenshot stream failed: %s", name, virt_msg());
                virStreamAbort(st);
                r = -EIO;
                goto cleanup;
        }
        if (fsync(fd) < 0) {
                r = -errno;
                goto cleanup;
        }
        if (ret_mime)
                snprintf(ret_mime, 64, "%s", mime);
cleanup:
        free(mime);
        virStreamFree(st);
        return r;
}

/* ---- lifecycle events ---- */

static pthread_t events_thread;
static atomic_bool events_running, events_stop;

int sf_virt_events_init(void) {
        static atomic_bool done;

        if (atomic_exchange(&done, true))
                return 0;
        if (virEventRegisterDefaultImpl() < 0) {
                atomic_store(&done, false);
                log_err("libvirt: cannot register the event loop: %s", virt_msg());
                return -EIO;
        }
        return 0;
}

static void events_wake(int timer, void *opaque) {
        (void)opaque;
        virEventRemoveTimeout(timer);
}

static void *events_main(void *arg) {
        (void)arg;
        while (!atomic_load(&events_stop))
                if (virEventRunDefaultImpl() < 0)
                        usleep(100 * 1000);
        return NULL;
}

int sf_virt_events_start(void) {
        int r;

        if (atomic_load(&events_running))
                return 0;
        atomic_store(&events_stop, false);
        r = pthread_create(&events_thread, NULL, events_main, NULL);
        if (r != 0)
                return -r;
        atomic_store(&events_running, true);
        return 0;
}

void sf_virt_events_stop(void) {
        if (!atomic_load(&events_running))
                return;
        atomic_store(&events_stop, true);
        /* A timer firing at once makes the loop return from its poll. */
        virEventAddTimeout(0, events_wake, NULL, NULL);
        pthread_join(events_thread, NULL);
        atomic_store(&events_running, false);
}

typedef struct watch {
        sf_virt_lifecycle_fn fn;
        void (*on_close)(void *opaque);
        void *opaque;
} watch_t;

static int lifecycle_cb(virConnectPtr c, virDomainPtr d, int event, int detail, void *opaque) {
        const watch_t *wt = opaque;
        const char *name = virDomainGetName(d);
        char uuid[SF_UUID_LEN];

        (void)c;
        (void)detail;
        if (name && strncmp(name, "sf:", 3) == 0 && sf_uuid_parse(name + 3, uuid))
                wt->fn(uuid, event, wt->opaque);
        return 0;
}

static void close_cb(virConnectPtr c, int reason, void *opaque) {
        const watch_t *wt = opaque;

        (void)c;
        log_warn("libvirt: event connection closed (reason %d)", reason);
        if (wt->on_close)
                wt->on_close(wt->opaque);
}

int sf_virt_watch(virConnectPtr c, sf_virt_lifecycle_fn fn, void (*on_close)(void *opaque), void *opaque,
                  int *ret_id) {
        watch_t *wt;
        int id;

        if (!c || !fn || !ret_id)
                return -EINVAL;
        wt = calloc(1, sizeof(*wt));
        if (!wt)
                return -ENOMEM;
        *wt = (watch_t){.fn = fn, .on_close = on_close, .opaque = opaque};
        id = virConnectDomainEventRegisterAny(c, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                              VIR_DOMAIN_EVENT_CALLBACK(lifecycle_cb), wt, free);
        if (id < 0) {
                log_err("libvirt: cannot watch lifecycle events: %s", virt_msg());
                free(wt);
                return -EIO;
        }
        /* libvirt keeps one close callback per connection; it frees nothing of ours. */
        if (on_close && virConnectRegisterCloseCallback(c, close_cb, wt, NULL) < 0)
                log_warn("libvirt: cannot watch the connection: %s", virt_msg());
        *ret_id = id;
        return 0;
}

void sf_virt_unwatch(virConnectPtr c, int id, void (*on_close)(void *opaque)) {
        (void)on_close;
        if (!c)
                return;
        virConnectUnregisterCloseCallback(c, close_cb);
        if (id >= 0)
                virConnectDomainEventDeregisterAny(c, id);
}

/* Runs in the forked child: only raw syscalls, no malloc, no stdio. Exit 0 = KVM ran
 * our guest code. */
static void __attribute__((noreturn)) kvm_probe_child(void) {
        static const uint8_t code[] = {0xb0, 0x42, 0xe6, 0x10, 0xf4}; /* mov $0x42,%al; out %al,$0x10; hlt */
        struct kvm_sregs sregs;
        struct kvm_regs regs;
        struct kvm_run *run;
        uint8_t *mem;
        int kvm, vm, vcpu, size;

        alarm(3);
        kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
        if (kvm < 0 || ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
                _exit(2);
        vm = ioctl(kvm, KVM_CREATE_VM, 0);
        if (vm < 0)
                _exit(3);
        mem = mmap(NULL, 0x1000, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                _exit(4);
        memcpy(mem, code, sizeof(code));
        struct kvm_userspace_memory_region region = {
                .slot = 0,
                .guest_phys_addr = 0x1000,
                .memory_size = 0x1000,
                .userspace_addr = (uint64_t)(uintptr_t)mem,
        };
        if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &region) < 0)
                _exit(5);
        vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
        size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
        if (vcpu < 0 || size < (int)sizeof(*run))
                _exit(6);
        run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
        if (run == MAP_FAILED)
                _exit(7);
        if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0)
                _exit(8);
        sregs.cs.base = 0;
        sregs.cs.selector = 0;
        if (ioctl(vcpu, KVM_SET_SREGS, &sregs) < 0)
                _exit(9);
        memset(&regs, 0, sizeof(regs));
        regs.rip = 0x1000;
        regs.rflags = 2;
        if (ioctl(vcpu, KVM_SET_REGS, &regs) < 0)
                _exit(10);
        if (ioctl(vcpu, KVM_RUN, 0) < 0)
                _exit(11);
        if (run->exit_reason != KVM_EXIT_IO || run->io.direction != KVM_EXIT_IO_OUT || run->io.port != 0x10 ||
            run->io.size != 1 || run->io.count != 1 || ((uint8_t *)run)[run->io.data_offset] != 0x42)
                _exit(12);
        _exit(0);
}

/* True only if a real guest instruction stream ran under KVM. */
static bool kvm_works(void) {
        int status = 0;
        pid_t pid = fork();

        if (pid < 0)
                return false;
        if (pid == 0) {
                signal(SIGALRM, SIG_DFL);
                kvm_probe_child();
        }
        /* alarm(3) in the child should end it; belt and braces in case it is wedged. */
        for (int waited_ms = 0;; waited_ms += 10) {
                pid_t w = waitpid(pid, &status, WNOHANG);
                if (w == pid)
                        break;
                if (w < 0 && errno != EINTR)
                        return false;
                if (waited_ms >= 5000) {
                        kill(pid, SIGKILL);
                        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                                ;
                        log_warn("kvm probe: child wedged, killed");
                        return false;
                }
                usleep(10 * 1000);
        }
        if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
                return true;
        if (WIFEXITED(status))
                log_info("kvm probe: failed at step %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
                log_info("kvm probe: killed by signal %d (timeout?)", WTERMSIG(status));
        return false;
}

int sf_virt_detect_type(const char *requested, char ret[8]) {
        if (!requested || !ret)
                return -EINVAL;
        if (strcmp(requested, "kvm") == 0 || strcmp(requested, "qemu") == 0) {
                snprintf(ret, 8, "%s", requested);
                return 0;
        }
        if (strcmp(requested, "auto") != 0) {
                log_err("domain type '%s' is not kvm, qemu or auto", requested);
                return -EINVAL;
        }
        snprintf(ret, 8, "%s", kvm_works() ? "kvm" : "qemu");
        log_info("domain type auto: using %s", ret);
        return 0;
}
