// Package images holds what ships sngate, and has no Go code of its own:
//
//   - deb/: the Debian package, built by `make deb` with nfpm for amd64,
//     arm64 and armhf: the binary, sngate.service, /etc/sngate/sngate.yaml
//     as a conffile, and maintainer scripts that create the user sngate and
//     enable the service;
//   - pi-gen/: a pi-gen stage that builds a Raspberry Pi OS Lite image with
//     the package, a first-boot configuration from the boot partition, and
//     the UART freed for serial sensors and radios.
//
// Its tests build the packages and check their metadata and contents,
// install the amd64 one into a Debian root made with debootstrap, and check
// the pi-gen stage's scripts, units and files for consistency. See
// README.md.
package images
