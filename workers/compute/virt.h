/* The compute worker's view of libvirt: define/start/destroy by domain name. */
#pragma once
#include <libvirt/libvirt.h>
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
