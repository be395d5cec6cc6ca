/* (Not limits.h: with -Ilib that name would shadow the system header.) */
/* Limits the API enforces and the workers size their arrays from: spelled once, so a
 * request the API accepts is one the workers can build. */
#pragma once

/* Disk specs per instance (the "disk" list of POST /instances).  The config drive is an
 * extra block device on top of these (api.md §6.1: it becomes device 1). */
#define SF_MAX_DISKS 16
/* Block devices of one domain: every disk plus the config drive. */
#define SF_MAX_BLOCK_DEVICES (SF_MAX_DISKS + 1)
/* Network interfaces per instance (the "network" list). */
#define SF_MAX_NICS 16
/* Side channels (virtio-serial unix sockets) per instance. */
#define SF_MAX_SIDE_CHANNELS 8
/* Ports a node hands out for serial consoles and VDI (api.md §7 step 5). */
#define SF_PORT_MIN 30000
#define SF_PORT_MAX 50000

/* Numeric ranges of POST /instances (units as upstream: MiB, GiB, KiB). */
#define SF_MAX_CPUS 64
#define SF_MIN_MEMORY_MIB 16
#define SF_MAX_MEMORY_MIB 1048576       /* 1 TiB */
#define SF_MAX_DISK_GIB 65536           /* 64 TiB */
#define SF_MAX_VIDEO_MEMORY_KIB 262144  /* 256 MiB; upstream's default is 16384 */

/* Netblocks of virtual networks: /8 (16M addresses) to /29 (upstream's minimum). */
#define SF_MIN_NETBLOCK_PREFIX 8
#define SF_MAX_NETBLOCK_PREFIX 29
