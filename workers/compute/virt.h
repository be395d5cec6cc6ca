/* The compute worker's view of libvirt: define/start/destroy by domain name. */
#pragma once
#include <libvirt/libvirt.h>
#include <stdbool.h>
#include <stddef.h>

/* Open a read-write connection (NULL uri ⇒ libvirt default).  libvirt's own error
 * printing is silenced; failures are logged here. */
int sf_virt_open(const char *uri, virConnectPtr *ret);
/* Close a connection; NULL is fine. */
void sf_virt_close(virConnectPtr c);
/* Make *conn usable: if it is NULL, closed, or does not answer a round trip (libvirtd
 * restarted since), close it and open a new one.  On failure *conn is NULL (every
 * sf_virt_* call then fails with -EINVAL) and -ECONNREFUSED is returned. */
int sf_virt_ensure_alive(const char *uri, virConnectPtr *conn);
/* Define (or redefine) xml, mark it autostart, start it unless already running
 * (a paused domain is resumed).  Idempotent. */
int sf_virt_define_start(virConnectPtr c, const char *xml);
/* VIR_DOMAIN_* state of the named domain; -ENOENT if there is none. */
int sf_virt_state(virConnectPtr c, const char *name, int *ret_state);
/* Power off (hard) and undefine, with managed save, snapshot metadata and nvram.
 * Absent is success. */
int sf_virt_destroy_undefine(virConnectPtr c, const char *name);
/* Uuids of every domain (running or defined) named sf:<uuid>.  Free with
 * sf_virt_strv_free(). */
int sf_virt_list_sf(virConnectPtr c, const char *node, char ***ret_uuids, size_t *ret_n);
void sf_virt_strv_free(char **v, size_t n);
/* Resolve SF_DOMAIN_TYPE: "kvm"/"qemu" pass through; "auto" runs a tiny real guest
 * on /dev/kvm (in a child, with a timeout) and answers "kvm" only if it worked,
 * since /dev/kvm may exist and libvirt may advertise kvm when it cannot run guests. */
int sf_virt_detect_type(const char *requested, char ret[8]);

/* ---- power operations (api.md §2.3); each returns -ENOENT when there is no domain ---- */
/* Start a defined domain that is shut off; resume it if paused; running is success. */
int sf_virt_start(virConnectPtr c, const char *name);
/* Power off (hard: destroy), keeping the definition.  Already off is success. */
int sf_virt_stop(virConnectPtr c, const char *name);
/* hard: virDomainReset; soft: virDomainReboot (ACPI, the guest decides). */
int sf_virt_reboot(virConnectPtr c, const char *name, bool hard);
/* Suspend / resume; already in the wanted state is success. */
int sf_virt_suspend(virConnectPtr c, const char *name);
int sf_virt_resume(virConnectPtr c, const char *name);
/* Upstream's power_state for a VIR_DOMAIN_* state: on, off, paused, crashed; NULL when
 * the state says nothing (VIR_DOMAIN_NOSTATE). */
const char *sf_virt_power_name(int state);
/* Write a screenshot of screen 0 to path (PNG or PPM, as the hypervisor makes it); the
 * MIME type in ret_mime (may be NULL).  -EAGAIN when the domain is not running, -ENODEV
 * when it has no screen (no video device). */
int sf_virt_screenshot(virConnectPtr c, const char *name, const char *path, char ret_mime[64]);

/* ---- lifecycle events ----
 * libvirt's default event loop, run on its own thread.  sf_virt_events_init must come
 * before the first connection is opened (libvirt only watches connections opened after
 * it, and only then do keepalives find a dead libvirtd). */
int sf_virt_events_init(void);
/* Start / stop the thread running the loop.  Stop is a no-op when not running. */
int sf_virt_events_start(void);
void sf_virt_events_stop(void);
/* Called for every lifecycle event of a domain named sf:<uuid>, on the loop's thread:
 * must not block. */
typedef void (*sf_virt_lifecycle_fn)(const char *uuid, int event, void *opaque);
/* Call fn on lifecycle events of c's domains, and on_close(opaque) when c closes (a
 * libvirtd restart).  *ret_id for sf_virt_unwatch. */
int sf_virt_watch(virConnectPtr c, sf_virt_lifecycle_fn fn, void (*on_close)(void *opaque), void *opaque,
                  int *ret_id);
void sf_virt_unwatch(virConnectPtr c, int id, void (*on_close)(void *opaque));
