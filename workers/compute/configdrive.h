/* OpenStack config-2 config drive (api.md §7.1): an ISO9660 image with Joliet and
 * Rock Ridge, volume id "config-2", written raw as the instance's device 1. */
#pragma once
#include <stddef.h>

typedef struct {
        char uuid[37];           /* interface uuid: network_data links[].vif_id */
        char mac[18];
        char ipv4[16];           /* "" ⇒ no address: the interface is left out */
        char netmask[16];
        char network_uuid[37];
        char gateway[16];        /* network router (netblock index 1) */
        int order;               /* ethN */
} sf_cd_iface_t;

typedef struct {
        char uuid[37];
        char name[64];
        char zone[64];
        const char *ssh_key;       /* NULL ⇒ public_keys.mykey null */
        const char *user_data_b64; /* NULL or "" ⇒ no user_data file */
        char dns_server[16];       /* "" ⇒ no dns service */
        int mtu;                   /* links[].mtu */
        sf_cd_iface_t *ifaces;
        size_t nifaces;
} sf_configdrive_t;

/* meta_data.json and network_data.json as strings (malloc'd).  Pure apart from
 * random_seed, which is fresh random bytes. */
int sf_configdrive_json(const sf_configdrive_t *cd, char **ret_meta, char **ret_network);
/* Build the ISO at iso_path (atomically: temporary name, then rename).
 * -EINVAL if user_data is not valid base64; -EIO if genisoimage fails. */
int sf_configdrive_build(const sf_configdrive_t *cd, const char *iso_path);
