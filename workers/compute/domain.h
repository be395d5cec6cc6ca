/* libvirt domain XML for an instance, rendered from templates/domain*.xml. */
#pragma once
#include "sflimits.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
        char device[16];         /* vda, sdb, ... (api.md §6.1) */
        char bus[16];            /* virtio | sata | scsi | usb | nvme (nvme: qemu args, libvirt 9 has no nvme bus) */
        char path[4096];
        char format[8];          /* qcow2 | raw */
        char backing[4096];      /* "" if none */
        char backing_format[8];  /* qcow2 | raw, when backing is set */
        bool readonly;
        char type[8];            /* disk | cdrom; a cdrom with path "" is an empty drive */
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
        /* Interactive serial console (telnet) and VDI graphics bind here: loopback unless
         * configured (SF_CONSOLE_BIND). */
        char listen[64];
        int console_port;        /* 0 ⇒ a pty console (no network port) */
        char vdi[16];            /* vnc | spice | spiceconcurrent | "" (no graphics) */
        int vdi_port;
        int vdi_tls_port;        /* spice only; 0 ⇒ no TLS port (the host has no spice TLS) */
        char video_model[16];    /* cirrus, vga, qxl, virtio, ...; "" ⇒ no <video> */
        int video_vram_kib;
        /* UEFI: the OVMF loader (pflash, read-only) and this instance's nvram, made by
         * libvirt from nvram_template when missing.  Secure boot needs q35 and SMM. */
        bool uefi, secure_boot;
        char loader[256];
        char nvram[4096];
        char nvram_template[256];
        /* Side channels: virtio-serial ports <channel_dir>/sc-<name>, guest name <name>. */
        char channel_dir[4096];
        char side_channels[SF_MAX_SIDE_CHANNELS][64];
        size_t nside_channels;
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
