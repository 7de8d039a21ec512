#!/bin/bash -e
# pi-gen substage: install sngate into the image. pi-gen runs this on the
# build host, in this directory, with ROOTFS_DIR (the image's root) and
# on_chroot (run a script inside it) set. It
#
#  1. installs files/sngate_*_ARCH.deb (copy it from the repository's dist/
#     after `make deb`), which creates the user sngate and enables
#     sngate.service;
#  2. installs sngate-firstboot.service, which moves a sngate.yaml dropped on
#     the boot partition to /etc/sngate/sngate.yaml at boot, after checking
#     it, and puts a sample next to where it is looked for;
#  3. gives the service the group gpio (a drop-in) where the image has it;
#  4. turns the UART on (enable_uart=1) and the serial console off, so that
#     /dev/serial0 is free for serial sensors and XBee radios.

# The image's architecture: pi-gen's ARCH unless SNGATE_DEB_ARCH is set.
arch="${SNGATE_DEB_ARCH:-${ARCH:-arm64}}"
deb_glob="sngate_*_${arch}.deb"

shopt -s nullglob
# shellcheck disable=SC2206 # the glob is meant to expand
debs=(files/${deb_glob})
shopt -u nullglob
if [ "${#debs[@]}" -ne 1 ]; then
	echo "stage-sngate: want exactly one files/${deb_glob}, found ${#debs[@]}: ${debs[*]}" >&2
	echo "stage-sngate: run 'make deb' in the sngate repository and copy dist/${deb_glob} to $(pwd)/files/" >&2
	exit 1
fi
deb="${debs[0]}"
deb_arch="$(dpkg-deb --field "${deb}" Architecture)"
if [ "${deb_arch}" != "${arch}" ]; then
	echo "stage-sngate: ${deb} is for ${deb_arch}, the image is ${arch}" >&2
	exit 1
fi
deb_name="$(basename "${deb}")"
install -m 644 "${deb}" "${ROOTFS_DIR}/tmp/${deb_name}"
on_chroot <<CHROOT
apt-get install -y "/tmp/${deb_name}"
rm -f "/tmp/${deb_name}"
CHROOT

install -D -m 755 files/sngate-firstboot "${ROOTFS_DIR}/usr/local/lib/sngate/sngate-firstboot"
install -D -m 644 files/sngate-firstboot.service "${ROOTFS_DIR}/etc/systemd/system/sngate-firstboot.service"
install -D -m 644 files/sngate.yaml "${ROOTFS_DIR}/boot/firmware/sngate.yaml.example"
on_chroot <<CHROOT
systemctl enable sngate-firstboot.service
CHROOT

# A SupplementaryGroups= naming a missing group fails every start, so only
# where the image has the group (Raspberry Pi OS does; stage2 makes it).
if grep -q '^gpio:' "${ROOTFS_DIR}/etc/group"; then
	install -D -m 644 files/gpio.conf "${ROOTFS_DIR}/etc/systemd/system/sngate.service.d/gpio.conf"
else
	echo "stage-sngate: no group gpio in the image; sngate.service gets no GPIO access" >&2
fi

# The UART on GPIO 14/15 (/dev/serial0). With Bluetooth on, serial0 is the
# mini UART, whose clock enable_uart=1 also pins so that the baud rate holds.
config="${ROOTFS_DIR}/boot/firmware/config.txt"
if ! grep -q '^# sngate: UART' "${config}"; then
	cat >>"${config}" <<'TXT'

[all]
# sngate: UART on GPIO 14/15 (/dev/serial0) for serial sensors and XBee radios
enable_uart=1
TXT
fi
# No login console on it: a getty and kernel messages there would garble
# the radio's frames and answer the sensors' bytes as a login prompt.
cmdline="${ROOTFS_DIR}/boot/firmware/cmdline.txt"
sed -i -E 's/console=(serial0|ttyAMA0|ttyS0),[0-9]+ ?//g' "${cmdline}"
