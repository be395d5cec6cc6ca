/* libvirt domain XML for an instance, rendered from templates/domain*.xml. */
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
        char device[16];         /* vda, sdb, ... (api.md §6.1) */
        char bus[16];            /* virtio | sata | scsi | usb */
        char path[4096];
        char format[8];          /* qcow2 | raw */
        char backing[4096];      /* "" if none */
        char backing_format[8];  /* qcow2 | raw, when backing is set */
        bool readonly;
        char type[8];            /* disk | cdrom */
} sf_domain_disk_t;

typedef struct {
        char mac[18];
        char bridge[32];
        char model[16];          /* virtio, e1000, ... */
        int mtu;
} sf_domain_nic_t;

typedef struct {
        char uuid[37];
        char name[64];           /* the instance's own name: goes into <title> */
        char node[64];           /* the sf node that owns the domain (libvirt metadata) */
        char domain_type[8];     /* kvm | qemu */
        char machine[8];         /* pc | q35 */
        int memory_mib;
        int vcpus;
        char console_log[4096];
        sf_domain_disk_t *disks;
        size_t ndisks;
        sf_domain_nic_t *nics;
        size_t nnics;
        /* cache='none' needs O_DIRECT on the instance filesystem (ext4/xfs: fine; tmpfs:
         * not).  Set this only where O_DIRECT fails; writeback risks guest data on a
         * host crash. */
        bool cache_writeback;
} sf_domain_spec_t;

/* Render the whole domain.  tmpl_dir NULL ⇒ sf_tmpl_dir().  -EINVAL on a bad spec. */
int sf_domain_xml(const sf_domain_spec_t *spec, const char *tmpl_dir, char **ret_xml);
/* The libvirt domain name for an instance: "sf:<uuid>". */
void sf_domain_name(const char *uuid, char out[64]);
/* The namespace of sf's element in libvirt's <metadata>. */
#define SF_DOMAIN_METADATA_NS "urn:sf:instance:1"
