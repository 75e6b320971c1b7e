package mqtttest

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func TestBrokerStartRestartStop(t *testing.T) {
	b := StartT(t)
	addr := "127.0.0.1:" + strconv.Itoa(b.Port)
	dial := func() error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err
	}
	if err := dial(); err != nil {
		t.Fatalf("broker not listening: %v", err)
	}
	if err := b.Restart(); err != nil {
		t.Fatalf("restart: %v", err)
	}
	if err := dial(); err != nil {
		t.Fatalf("broker not listening after restart: %v", err)
	}
	if err := b.Stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if b.Running() {
		t.Fatal("Running after Stop")
	}
	if err := dial(); err == nil {
		t.Fatal("still listening after Stop")
	}
}
