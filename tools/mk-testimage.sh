#!/usr/bin/env bash
# Build OUTDIR/sftest.qcow2: a tiny bootable test guest (Debian kernel +
# busybox initramfs on a syslinux FAT16 disk).  No loop devices, no mounts.
# The guest prints SFTEST markers on ttyS0; see the /init below.
# Usage: tools/mk-testimage.sh OUTDIR
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi

OUT=$1
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/.cache
WORK=$OUT/.work
FINAL=$OUT/sftest.qcow2

DISK_MIB=40
PART_START=2048                      # sectors (1 MiB)
MODULES="virtio_pci virtio_blk virtio_net virtio_scsi ata_piix ahci sd_mod sr_mod
         isofs vfat nls_cp437 nls_ascii nls_utf8 af_packet
         nvme virtio_console uhci_hcd ehci_pci xhci_pci usb_storage e1000"
# Built into some kernels: not finding them as modules is fine.
OPTIONAL_MODULES=" af_packet nvme virtio_console uhci_hcd ehci_pci xhci_pci usb_storage e1000 "

for tool in apt-cache apt-get dpkg-deb depmod modprobe cpio gzip sfdisk \
            mkfs.vfat syslinux mcopy qemu-img; do
    command -v "$tool" >/dev/null || { echo "mk-testimage: missing $tool" >&2; exit 1; }
done
BUSYBOX=/bin/busybox
# grep without -q: an early exit would SIGPIPE busybox and trip pipefail.
if ! [ -x "$BUSYBOX" ] || ! "$BUSYBOX" --list | grep -x udhcpc >/dev/null; then
    echo "mk-testimage: need busybox-static at $BUSYBOX" >&2
    exit 1
fi
MBR=/usr/lib/syslinux/mbr/mbr.bin
[ -f "$MBR" ] || { echo "mk-testimage: missing $MBR (syslinux-common)" >&2; exit 1; }

cleanup() { rm -rf "$WORK" "$FINAL.tmp.$$"; }
trap cleanup EXIT
trap "exit 130" INT TERM HUP
rm -rf "$WORK"
mkdir -p "$CACHE" "$WORK"
chmod 0755 "$CACHE" "$WORK"

# ---- 1. kernel package (cached) -------------------------------------------
KPKG=$(apt-cache depends linux-image-amd64 2>/dev/null |
       awk '/Depends: linux-image-[0-9]/{print $2; exit}' || true)
DEB=""
if [ -n "$KPKG" ]; then
    DEB=$(ls -1 "$CACHE/${KPKG}"_*.deb 2>/dev/null | tail -n1 || true)
    if [ -z "$DEB" ]; then
        echo "mk-testimage: downloading $KPKG"
        mkdir -m 0755 "$WORK/dl"
        # apt downloads as the unprivileged _apt user when it can write here.
        if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
            chown _apt "$WORK/dl"
        fi
        (cd "$WORK/dl" && apt-get download -q "$KPKG")
        f=$(ls -1 "$WORK/dl/${KPKG}"_*.deb | head -n1)
        mv "$f" "$CACHE/"
        DEB=$CACHE/$(basename "$f")
    fi
else
    # No apt lists (e.g. offline): fall back to whatever is cached.
    DEB=$(ls -1 "$CACHE"/linux-image-[0-9]*.deb 2>/dev/null | tail -n1 || true)
    [ -n "$DEB" ] || { echo "mk-testimage: cannot resolve linux-image-amd64 (apt-get update?)" >&2; exit 1; }
    KPKG=$(basename "$DEB"); KPKG=${KPKG%%_*}
fi
KV=${KPKG#linux-image-}
echo "mk-testimage: kernel $KV from $(basename "$DEB")"

# Extract vmlinuz and the needed modules once per .deb; cache the result.
KC=$CACHE/$(basename "$DEB" .deb)
# (keyed by the module list too: a cache made for fewer modules is made again)
WANT_MODULES=$(echo $MODULES)
if [ ! -f "$KC/vmlinuz" ] || [ ! -f "$KC/modules/order" ] ||
   [ "$(cat "$KC/modules.list" 2>/dev/null)" != "$WANT_MODULES" ]; then
    K=$WORK/k
    T=$WORK/kc
    mkdir -p "$K" "$T/modules"
    dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$K" --wildcards \
        './boot/vmlinuz-*' './boot/config-*' "./lib/modules/$KV/*"
    depmod -b "$K" "$KV"
    cp "$K/boot/vmlinuz-$KV" "$T/vmlinuz"
    : > "$T/modules/order"
    # Each wanted module with its dependencies, in load order, deduplicated.
    for m in $MODULES; do
        deps=$(modprobe -d "$K" -S "$KV" --show-depends "$m" 2>/dev/null || true)
        if [ -z "$deps" ]; then
            case "$OPTIONAL_MODULES" in *" $m "*) continue ;; esac   # built in
            echo "mk-testimage: module $m not found in $KV" >&2
            exit 1
        fi
        for ko in $(echo "$deps" | awk '$1 == "insmod" { print $2 }'); do
            name=$(basename "$ko")
            grep -qxF "$name" "$T/modules/order" && continue
            cp "$ko" "$T/modules/$name"
            echo "$name" >> "$T/modules/order"
        done
    done
    echo "$WANT_MODULES" > "$T/modules.list"
    rm -rf "$KC"
    mv "$T" "$KC"
fi

# ---- 2. initramfs ----------------------------------------------------------
R=$WORK/root
mkdir -p "$R"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,mnt/config,run,tmp,etc,lib}
cp "$BUSYBOX" "$R/bin/busybox"
ln -s busybox "$R/bin/sh"          # the rest come from busybox --install in /init
cp -r "$KC/modules" "$R/lib/modules"

cat > "$R/etc/udhcpc.script" <<'EOF'
#!/bin/sh
# busybox udhcpc hook: apply the lease and print a marker line.
case "$1" in
deconfig)
    ip addr flush dev "$interface" 2>/dev/null
    ip link set "$interface" up
    ;;
bound|renew)
    ifconfig "$interface" "$ip" netmask "${subnet:-255.255.255.0}" up
    [ -n "$mtu" ] && ip link set dev "$interface" mtu "$mtu"
    gw=""
    for r in $router; do gw=$r; break; done
    if [ -n "$gw" ]; then
        ip route del default dev "$interface" 2>/dev/null
        ip route add default via "$gw" dev "$interface"
    fi
    echo "$gw" > "/run/router.$interface"
    echo "DHCP-LEASE $interface ip=$ip router=$gw mask=$subnet"
    ;;
esac
exit 0
EOF
chmod 0755 "$R/etc/udhcpc.script"

cat > "$R/init" <<'EOF'
#!/bin/sh
# sf test guest.  Every line here ends up on the serial console.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
/bin/busybox --install -s
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t tmpfs tmpfs /run
echo "SFTEST: init start"

while read -r m; do
    insmod "/lib/modules/$m" 2>/dev/null
done < /lib/modules/order

# Config drive (ISO9660 disk or cdrom, label config-2).
poweroff=0
grep -qw 'sftest.poweroff' /proc/cmdline && poweroff=1
dev=""
i=0
while [ $i -lt 30 ]; do
    dev=$(findfs LABEL=config-2 2>/dev/null) && [ -n "$dev" ] && break
    dev=""
    sleep 0.5
    i=$((i + 1))
done
if [ -n "$dev" ] && { mount -t iso9660 -o ro "$dev" /mnt/config 2>/dev/null ||
                      mount -t vfat -o ro "$dev" /mnt/config 2>/dev/null; }; then
    echo "SFTEST: config drive at $dev"
    echo "SFTEST-META-BEGIN"
    cat /mnt/config/openstack/latest/meta_data.json 2>/dev/null
    echo
    echo "SFTEST-META-END"
    if [ -f /mnt/config/openstack/latest/user_data ]; then
        echo "SFTEST-USERDATA-BEGIN"
        cat /mnt/config/openstack/latest/user_data
        echo
        echo "SFTEST-USERDATA-END"
    fi
    grep -qw 'sftest-poweroff' /mnt/config/openstack/latest/user_data 2>/dev/null && poweroff=1
    # Top-level "name" only (keys[] entries have a "name" too).
    name=$(awk 'BEGIN { RS = "\001" }
    {
        s = $0; n = length(s); d = 0; want = 0; i = 1
        while (i <= n) {
            c = substr(s, i, 1)
            if (c == "\"") {
                j = i + 1; t = ""
                while (j <= n) {
                    c2 = substr(s, j, 1)
                    if (c2 == "\\") { t = t substr(s, j + 1, 1); j += 2; continue }
                    if (c2 == "\"") break
                    t = t c2; j++
                }
                i = j + 1
                if (want) { print t; exit }
                if (d == 1 && t == "name") {
                    k = i
                    while (substr(s, k, 1) ~ /[ \t\r\n]/) k++
                    if (substr(s, k, 1) == ":") { want = 1; i = k + 1 }
                }
                continue
            }
            if (c == "{" || c == "[") d++
            else if (c == "}" || c == "]") d--
            else if (want && c !~ /[ \t\r\n]/) want = 0
            i++
        }
    }' /mnt/config/openstack/latest/meta_data.json 2>/dev/null |
        tr -c 'A-Za-z0-9.\n-' '-' | cut -c1-63)
    if [ -n "$name" ]; then
        hostname "$name"
        echo "SFTEST: hostname $name"
    fi
    umount /mnt/config 2>/dev/null
else
    echo "SFTEST: no config drive"
fi

ip link set lo up
for p in /sys/class/net/eth*; do
    [ -e "$p" ] || continue
    ifc=${p##*/}
    ip link set "$ifc" up
    if udhcpc -i "$ifc" -n -q -t 10 -T 2 -s /etc/udhcpc.script; then
        gw=$(cat "/run/router.$ifc" 2>/dev/null)
        if [ -n "$gw" ]; then
            if ping -c 2 -W 2 "$gw"; then
                echo "SFTEST-PING $gw ok"
            else
                echo "SFTEST-PING $gw fail"
            fi
        fi
    else
        echo "SFTEST: no DHCP lease on $ifc"
    fi
done

# Block devices as the guest names them, cdrom contents, virtio-serial port names.
echo "SFTEST-BLOCK $(ls /sys/block | grep -v -e '^loop' -e '^ram' | tr '\n' ' ')"
for d in /dev/sr*; do
    [ -e "$d" ] || continue
    mkdir -p /mnt/cd
    if mount -t iso9660 -o ro "$d" /mnt/cd 2>/dev/null; then
        echo "SFTEST-CDROM ${d#/dev/} $(cat /mnt/cd/sftest.txt 2>/dev/null | head -n 1)"
        umount /mnt/cd
    else
        echo "SFTEST-CDROM ${d#/dev/} empty"
    fi
done
ports=""
for p in /sys/class/virtio-ports/*; do
    [ -e "$p/name" ] && ports="$ports $(cat "$p/name")"
done
echo "SFTEST-CHANNELS$ports"
echo "SFTEST-DONE"

if [ $poweroff -eq 1 ]; then
    sync
    poweroff -f
fi
# Stay up like a real server: a shell on the console, respawned.
while :; do
    setsid cttyhack sh -l
    sleep 1
done
EOF
chmod 0755 "$R/init"

(cd "$R" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) | gzip -9 > "$WORK/initrd.gz"

# ---- 3. disk: MBR + one bootable FAT16 partition with syslinux ------------
cat > "$WORK/syslinux.cfg" <<'EOF'
DEFAULT sf
PROMPT 0
TIMEOUT 0
LABEL sf
  KERNEL vmlinuz
  INITRD initrd.gz
  APPEND console=ttyS0,115200 panic=-1 quiet
EOF
PART_SECTORS=$(( DISK_MIB * 2048 - PART_START ))
PART=$WORK/part.img
rm -f "$PART"
mkfs.vfat -F 16 -n SFTEST -h "$PART_START" -C "$PART" $(( PART_SECTORS / 2 )) >/dev/null
syslinux --install "$PART"
mcopy -i "$PART" "$KC/vmlinuz" "$WORK/initrd.gz" "$WORK/syslinux.cfg" ::/

RAW=$WORK/disk.raw
truncate -s "${DISK_MIB}M" "$RAW"
printf 'label: dos\nstart=%d, type=6, bootable\n' "$PART_START" | sfdisk -q "$RAW"
dd if="$PART" of="$RAW" bs=512 seek="$PART_START" conv=notrunc status=none
dd if="$MBR" of="$RAW" bs=440 count=1 conv=notrunc status=none

qemu-img convert -c -O qcow2 "$RAW" "$FINAL.tmp.$$"
mv -f "$FINAL.tmp.$$" "$FINAL"
echo "mk-testimage: wrote $FINAL ($(du -h "$FINAL" | cut -f1))"
