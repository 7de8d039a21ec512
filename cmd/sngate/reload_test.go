package main

import (
	"context"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/sngate/sngate/internal/mosquittotest"
	"github.com/sngate/sngate/mqttsn"
)

// TestRunReloadAppliesLive: SIGHUP applies a new ACL, new predefined topic
// ids and new bridge rules while an MQTT-SN client stays connected and the
// bridge stays up: its subscription the new ACL forbids is revoked, its
// predefined id 1 now means another topic, and that topic is relayed by a
// bridge rule the old file did not have. Nothing is named for a restart.
func TestRunReloadAppliesLive(t *testing.T) {
	up := mosquittotest.Start(t, mosquittotest.Config{})
	got := up.Collect(t, "gw1/#", 1, "checker")
	tcpPort, udpPort := freePorts(t)
	section := func(acl, topic, rule string) string {
		return `
  acl:
    - {anonymous: true, topic: "` + acl + `"}
gateway:
  listen: 127.0.0.1:` + strconv.Itoa(udpPort) + `
  predefined_topics:
    - {id: 1, topic: ` + topic + `}
bridge:
  connections:
    - name: cloud
      url: ` + up.URL() + `
      rules:
        - {direction: out, topic: "` + rule + `", qos: 1, remote_prefix: gw1/}
`
	}
	head := "data_dir: " + t.TempDir() + "\nbroker:\n  listeners:\n    - address: 127.0.0.1:" + strconv.Itoa(tcpPort)
	cfg := writeFile(t, "sngate.yaml", head+section("#", "a/one", "a/#"))
	stderr, stop := startRun(t, "run", "-c", cfg)
	defer stop()
	waitFor(t, stderr, "upstream connected")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sn, err := mqttsn.Dial(ctx, "127.0.0.1:"+strconv.Itoa(udpPort), mqttsn.ClientConfig{ClientID: "sensor", CleanSession: true, RetryInterval: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()
	if err := sn.Connect(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Subscribe(ctx, mqttsn.TopicName("secret/#"), 1); err != nil {
		t.Fatal(err)
	}
	if err := sn.Publish(ctx, mqttsn.PredefinedTopic(1), []byte("before"), 1, false); err != nil {
		t.Fatal(err)
	}
	if ms := got.WaitCount(t, 1, 20*time.Second); ms[0].Topic != "gw1/a/one" {
		t.Fatalf("upstream got %+v before the reload", ms[0])
	}

	if err := os.WriteFile(cfg, []byte(head+section("b/#", "b/one", "b/#")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, stderr, `"subscriptions_revoked":1,"predefined_topics":1,"failed":"","changed_needing_restart":""`)
	waitFor(t, stderr, `"msg":"subscription removed: the reloaded ACL does not allow it","part":"broker","client":"sensor","filter":"secret/#"`)

	if err := sn.Publish(ctx, mqttsn.PredefinedTopic(1), []byte("after"), 1, false); err != nil {
		t.Fatal(err)
	}
	if ms := got.WaitCount(t, 2, 20*time.Second); ms[1].Topic != "gw1/b/one" || ms[1].Payload != "after" {
		t.Fatalf("upstream got %+v after the reload, want gw1/b/one after", ms[1])
	}
	if !sn.Connected() {
		t.Error("the MQTT-SN client lost its connection in the reload")
	}
}
