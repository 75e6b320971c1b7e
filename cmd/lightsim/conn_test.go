package main

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// tcpPair returns a coalescing client conn and the server's end of a real
// loopback TCP connection.
func tcpPair(t *testing.T) (*coalescingConn, net.Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { _ = server.Close() })
	return newCoalescingConn(raw), server
}

func TestCoalescingConnKeepsOrderAndFlushesOnClose(t *testing.T) {
	client, server := tcpPair(t)
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(server) // until the client's Close
		got <- b
	}()
	var want bytes.Buffer
	for i := range 5000 {
		// Sizes from 1 to ~1 KiB, so batches straddle packet boundaries
		// and the pending limit is reached now and then.
		p := bytes.Repeat([]byte{byte(i)}, 1+i%1021)
		want.Write(p)
		if n, err := client.Write(p); err != nil || n != len(p) {
			t.Fatalf("write %d: %d, %v", i, n, err)
		}
	}
	if err := client.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case b := <-got:
		if !bytes.Equal(b, want.Bytes()) {
			t.Fatalf("server read %d bytes, want %d, identical and in order", len(b), want.Len())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server never saw EOF")
	}
	if _, err := client.Write([]byte("x")); err == nil {
		t.Fatal("write after Close succeeded")
	}
}

func TestCoalescingConnReadsAndReportsWriteErrors(t *testing.T) {
	client, server := tcpPair(t)
	if _, err := server.Write([]byte("\x40\x02\x00\x01\x40\x02\x00\x02")); err != nil { // two PUBACKs
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if _, err := io.ReadFull(client, buf); err != nil || buf[3] != 1 || buf[7] != 2 {
		t.Fatalf("read %x, %v", buf, err)
	}
	// The peer goes away: writes must start failing (the kernel needs a
	// write or two to notice the reset), not be swallowed forever.
	_ = server.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := client.Write(make([]byte, 4096)); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("writes to a closed peer never failed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	_ = client.Close()
}
