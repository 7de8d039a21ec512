//go:build unix

package bridge

// The crash test: sngate's broker and bridge run in a child process (this
// test binary run again as TestHelperGateway) so that it can be killed
// with SIGKILL: no shutdown, no last commit.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sngate/sngate/broker"
	"github.com/sngate/sngate/internal/mosquittotest"
)

const (
	childDirEnv  = "SNGATE_TEST_BRIDGE_CHILD_DIR"
	childAddrEnv = "SNGATE_TEST_BRIDGE_CHILD_ADDR"
	childConnEnv = "SNGATE_TEST_BRIDGE_CHILD_CONN" // the ConnectionConfig, JSON
	childReady   = "BRIDGE CHILD READY"
	childLife    = 3 * time.Minute
)

// TestHelperGateway is not a test: it is the gateway process of
// TestBridgeCrash, run by it with the environment set.
func TestHelperGateway(t *testing.T) {
	dir, addr, connJSON := os.Getenv(childDirEnv), os.Getenv(childAddrEnv), os.Getenv(childConnEnv)
	if dir == "" {
		t.Skip("helper process of TestBridgeCrash; runs only as its child")
	}
	var conn ConnectionConfig
	if err := json.Unmarshal([]byte(connJSON), &conn); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := broker.New(broker.Config{Listeners: []broker.ListenerConfig{{Type: "tcp", Address: addr}}, SysInterval: -1},
		broker.Options{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	br, err := New(Config{Connections: []ConnectionConfig{conn}}, srv, Options{DataDir: dir, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	br.Start()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	fmt.Println(childReady)
	select {
	case <-stop: // a graceful stop, as sngate run does it
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := br.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		if err := srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	case <-time.After(childLife): // until killed
		t.Error("helper gateway not stopped within", childLife)
	}
}

// gatewayChild is a running helper gateway.
type gatewayChild struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
	done   chan error
}

func startGatewayChild(t *testing.T, dir, addr string, conn ConnectionConfig) *gatewayChild {
	t.Helper()
	connJSON, err := json.Marshal(conn)
	if err != nil {
		t.Fatal(err)
	}
	c := &gatewayChild{done: make(chan error, 1)}
	c.cmd = exec.Command(os.Args[0], "-test.run=^TestHelperGateway$", "-test.count=1", "-test.timeout="+(childLife+30*time.Second).String())
	c.cmd.Env = append(os.Environ(), childDirEnv+"="+dir, childAddrEnv+"="+addr, childConnEnv+"="+string(connJSON))
	stdout, err := c.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := c.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cmd.Process.Kill() })
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == childReady {
				close(ready)
			}
		}
	}()
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			c.mu.Lock()
			c.stderr.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
		}
		c.done <- c.cmd.Wait()
	}()
	select {
	case <-ready:
	case err := <-c.done:
		t.Fatalf("helper gateway ended before it was ready: %v\n%s", err, c.log())
	case <-time.After(waitTime):
		t.Fatalf("helper gateway not ready within %v\n%s", waitTime, c.log())
	}
	return c
}

func (c *gatewayChild) log() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stderr.String()
}

// kill ends the child with SIGKILL and waits for it.
func (c *gatewayChild) kill(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Fatalf("helper gateway: %v, want killed", err)
		}
	case <-time.After(waitTime):
		t.Fatal("helper gateway did not die")
	}
	t.Logf("helper gateway killed; its log:\n%s", c.log())
}

// stop ends the child with SIGTERM and waits for its clean exit.
func (c *gatewayChild) stop(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-c.done:
		if err != nil {
			t.Fatalf("helper gateway after SIGTERM: %v\n%s", err, c.log())
		}
	case <-time.After(waitTime):
		t.Fatal("helper gateway did not stop")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// TestBridgeCrash: 10,000 QoS 1 messages acknowledged during an outage
// survive a SIGKILL of the gateway; a second SIGKILL in the middle of the
// drain costs at most the in-flight window in duplicates, and nothing is
// lost or reordered.
func TestBridgeCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("kills child processes")
	}
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up := mosquittotest.Start(t, mosquittotest.Config{Persistence: true})
		got := up.Collect(t, "gw1/#", 1, "checker")
		up.Stop()

		dir, addr := t.TempDir(), freeAddr(t)
		conn := ConnectionConfig{
			Name: "cloud", URL: up.URL(), Protocol: protocol, ReconnectMax: 2e9, Inflight: 100,
			Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1, RemotePrefix: "gw1/"}},
		}
		child := startGatewayChild(t, dir, addr, conn)
		const n = 10000
		publishNumbered(t, addr, "sensors/t", 1, 1, n)
		child.kill(t) // during the outage

		child = startGatewayChild(t, dir, addr, conn)
		up.Start()
		// Kill it again while it drains, once some messages are out.
		deadline := time.Now().Add(waitTime)
		for len(got.Messages()) == 0 && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		child.kill(t)
		mid := len(got.Messages())
		t.Logf("killed with %d of %d messages upstream", mid, n)

		startGatewayChild(t, dir, addr, conn)
		ms := got.WaitCount(t, n, waitTime)
		// Let a late duplicate show up before counting: wait for the
		// count to stay put a moment (bounded).
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for prev := len(ms); ctx.Err() == nil; prev = len(ms) {
			time.Sleep(200 * time.Millisecond)
			if ms = got.Messages(); len(ms) == prev {
				break
			}
		}
		dups := checkNumbered(t, payloads(ms), 1, n)
		t.Logf("%d duplicates", dups)
		if dups > conn.Inflight {
			t.Errorf("%d duplicates, more than the in-flight window of %d", dups, conn.Inflight)
		}
	})
}

// TestBridgeGracefulRestart: messages queued during an outage survive a
// graceful stop and start of the gateway, and go out once, in order.
func TestBridgeGracefulRestart(t *testing.T) {
	forEachProtocol(t, func(t *testing.T, protocol string) {
		up := mosquittotest.Start(t, mosquittotest.Config{Persistence: true})
		got := up.Collect(t, "gw1/#", 1, "checker")
		up.Stop()
		dir, addr := t.TempDir(), freeAddr(t)
		conn := ConnectionConfig{
			Name: "cloud", URL: up.URL(), Protocol: protocol, ReconnectMax: 2e9,
			Rules: []Rule{{Direction: DirOut, Topic: "sensors/#", QoS: 1, RemotePrefix: "gw1/"}},
		}
		child := startGatewayChild(t, dir, addr, conn)
		const n = 2000
		publishNumbered(t, addr, "sensors/t", 1, 1, n)
		child.stop(t)

		startGatewayChild(t, dir, addr, conn)
		up.Start()
		ms := got.WaitCount(t, n, waitTime)
		if dups := checkNumbered(t, payloads(ms), 1, n); dups != 0 {
			t.Errorf("%d duplicates after a graceful restart", dups)
		}
	})
}
