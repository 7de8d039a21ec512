package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sngate/sngate/mqttsn"
)

// needChromium returns the chromium binary. Without one the test is
// skipped, unless CI is set: there the status page must be tested.
func needChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if path, err := exec.LookPath(name); err == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("chromium not installed (Debian package chromium), and CI is set: the status page must be tested there")
	}
	t.Skip("chromium not installed (Debian package chromium)")
	return ""
}

// headless runs chromium without a head, a profile or network chatter on
// url with more flags (--dump-dom, --screenshot=FILE), and returns its
// standard output.
func headless(t *testing.T, chromium, url string, flags ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	home := t.TempDir()
	args := append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + filepath.Join(home, "profile")}, flags...)
	cmd := exec.CommandContext(ctx, chromium, append(args, url)...)
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_CACHE_HOME="+home)
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(flags, " "), err, stderr.String())
	}
	return stdout.String()
}

// TestStatusPageInChromium: a browser renders the status page of a running
// sngate, and it shows a client that connected (its id escaped, not
// markup), its state and its topic.
func TestStatusPageInChromium(t *testing.T) {
	chromium := needChromium(t)
	metrics := freeAddr(t)
	tcpPort, udpPort := freePorts(t)
	cfg := portsConfig(t, tcpPort, udpPort, "metrics:\n  listen: "+metrics+"\n")
	stderr, stop := startRun(t, "run", "-c", cfg)
	defer stop()
	waitFor(t, stderr, "sngate started")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	const id = "<i>probe-7</i>" // markup in an id must show as text
	c, err := mqttsn.Dial(ctx, "127.0.0.1:"+strconv.Itoa(udpPort), mqttsn.ClientConfig{ClientID: id, RetryInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Subscribe(ctx, mqttsn.TopicName("status/probe"), mqttsn.QoS1); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Register(ctx, "status/probe-out"); err != nil {
		t.Fatal(err)
	}

	url := "http://" + metrics + "/"
	dom := headless(t, chromium, url, "--dump-dom")
	row := regexp.MustCompile(`(?s)<tr class="client">.*?</tr>`).FindString(dom)
	if row == "" {
		t.Fatalf("no client row in the page:\n%s", dom)
	}
	for _, want := range []string{`&lt;i&gt;probe-7&lt;/i&gt;`, `st-active">active</span>`, "udp 127.0.0.1:" + strconv.Itoa(udpPort)} {
		if !strings.Contains(row, want) {
			t.Errorf("the client row lacks %q:\n%s", want, row)
		}
	}
	if strings.Contains(dom, "<i>probe-7") {
		t.Error("the client id was rendered as markup")
	}
	for _, want := range []string{">status/probe<", ">status/probe-out<", "MQTT-SN gateway", "Broker"} {
		if !strings.Contains(dom, want) {
			t.Errorf("the page lacks %q", want)
		}
	}

	shot := filepath.Join(t.TempDir(), "status.png")
	headless(t, chromium, url, "--window-size=1280,900", "--hide-scrollbars", "--screenshot="+shot)
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	if len(png) < 1000 || !bytes.HasPrefix(png, []byte("\x89PNG\r\n\x1a\n")) {
		t.Errorf("the screenshot is not a PNG image (%d bytes)", len(png))
	}
}
