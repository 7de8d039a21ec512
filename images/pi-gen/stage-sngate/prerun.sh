#!/bin/bash -e
# pi-gen: start from a copy of the previous stage's root (stage2, Lite).

if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
