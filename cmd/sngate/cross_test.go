package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// TestCrossArm64UnderQemu builds sngate for linux/arm64 (CGO off, as
// `make cross` does) and runs it under qemu-aarch64-static: it must answer
// an MQTT-SN CONNECT and an MQTT CONNECT, and stop cleanly on SIGTERM.
func TestCrossArm64UnderQemu(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and emulates an arm64 binary")
	}
	qemu, err := exec.LookPath("qemu-aarch64-static")
	if err != nil {
		t.Skip("qemu-aarch64-static not installed (Debian package qemu-user-static)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sngate-arm64")
	buildSngate(ctx, t, bin, []string{"GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0"}, "-trimpath")

	tcpPort, udpPort := freePorts(t)
	cmd := exec.CommandContext(ctx, qemu, bin, "run", "-c", portsConfig(t, tcpPort, udpPort, ""))
	cmd.Env = append(os.Environ(), envConfig+"=")
	cmd.WaitDelay = 10 * time.Second
	p := startProcess(t, cmd)
	p.expect(t, "sngate started", 3*time.Minute) // qemu starts slowly; ctx bounds it too

	// Emulated, it answers slowly: generous timeouts.
	mqttConnects(t, "127.0.0.1:"+strconv.Itoa(tcpPort), 30*time.Second)
	snConnects(t, "127.0.0.1:"+strconv.Itoa(udpPort), 30*time.Second)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := p.wait(); err != nil {
		t.Fatalf("the arm64 sngate after SIGTERM: %v\n%s", err, p.log.String())
	}
}
