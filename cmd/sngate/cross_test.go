package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go command not found")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin := filepath.Join(dir, "sngate-arm64")
	build := exec.CommandContext(ctx, goCmd, "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH=arm64", "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build for arm64: %v\n%s", err, out)
	}

	tcpPort, udpPort := freePorts(t)
	cfg := writeFile(t, "sngate.yaml", "broker:\n  listeners:\n    - address: 127.0.0.1:"+strconv.Itoa(tcpPort)+
		"\ngateway:\n  listen: 127.0.0.1:"+strconv.Itoa(udpPort)+"\ndata_dir: "+filepath.Join(dir, "data")+"\n")
	cmd := exec.CommandContext(ctx, qemu, bin, "run", "-c", cfg)
	cmd.Env = append(os.Environ(), envConfig+"=")
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	started := make(chan struct{})
	var log strings.Builder
	logDone := make(chan struct{})
	go func() {
		defer close(logDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "sngate started") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-logDone:
		t.Fatalf("the arm64 sngate ended before it started:\n%s", log.String())
	case <-ctx.Done():
		t.Fatal("the arm64 sngate did not start")
	}

	// MQTT CONNECT (3.1.1, client id "c") → CONNACK accepted.
	nc, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(tcpPort), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := nc.Write([]byte{0x10, 0x0D, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 1, 'c'}); err != nil {
		t.Fatal(err)
	}
	connack := make([]byte, 4)
	if _, err := io.ReadFull(nc, connack); err != nil || string(connack) != "\x20\x02\x00\x00" {
		t.Fatalf("MQTT CONNACK % X, %v", connack, err)
	}

	// MQTT-SN CONNECT (clean session, keep-alive 60, client id "abc") → CONNACK accepted.
	sn, err := net.Dial("udp", "127.0.0.1:"+strconv.Itoa(udpPort))
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	_ = sn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := sn.Write([]byte{0x09, 0x04, 0x04, 0x01, 0x00, 0x3C, 'a', 'b', 'c'}); err != nil {
		t.Fatal(err)
	}
	snAck := make([]byte, 16)
	if n, err := sn.Read(snAck); err != nil || string(snAck[:n]) != "\x03\x05\x00" {
		t.Fatalf("MQTT-SN CONNACK % X, %v", snAck[:n], err)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-logDone
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the arm64 sngate after SIGTERM: %v\n%s", err, log.String())
	}
}
