package main

import (
	"bufio"
	"errors"
	"net"
	"net/url"
	"sync"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// Why a connection of our own: paho writes every packet to the socket with
// its own write(2) and reads every PUBACK with three or four read(2)s. At
// tens of thousands of messages a second the syscalls are the publisher's
// whole cost. coalescingConn batches both ways: writes are appended to a
// buffer that one goroutine flushes (many packets per syscall, in order;
// while a flush runs the next batch gathers), and reads go through a bufio
// reader. It is used for tcp:// and mqtt:// brokers only; TLS and websocket
// connections keep paho's own.

// maxPending bounds the bytes waiting to be flushed: Write blocks beyond it,
// which is back-pressure on paho's writer as a socket's would be.
const maxPending = 256 << 10

// closeFlushTimeout bounds how long Close waits to flush what is pending
// (the DISCONNECT packet, typically) to a peer that does not read.
const closeFlushTimeout = 2 * time.Second

type coalescingConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex
	cond    *sync.Cond
	pending []byte
	spare   []byte
	err     error // the first write error; every later Write returns it
	closing bool
	done    chan struct{} // closed when the flusher has returned
}

func newCoalescingConn(c net.Conn) *coalescingConn {
	cc := &coalescingConn{Conn: c, r: bufio.NewReaderSize(c, 64<<10), done: make(chan struct{})}
	cc.cond = sync.NewCond(&cc.mu)
	go cc.flusher() // owned by the conn: Close waits for it
	return cc
}

var errConnClosed = errors.New("connection closed")

func (c *coalescingConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// Write queues p for the flusher. An error from an earlier flush is
// returned here, so paho sees a broken connection at its next write.
func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.pending) >= maxPending && c.err == nil && !c.closing {
		c.cond.Wait()
	}
	switch {
	case c.err != nil:
		return 0, c.err
	case c.closing:
		return 0, errConnClosed
	}
	c.pending = append(c.pending, p...)
	c.cond.Broadcast()
	return len(p), nil
}

func (c *coalescingConn) flusher() {
	defer close(c.done)
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for len(c.pending) == 0 && !c.closing {
			c.cond.Wait()
		}
		if len(c.pending) == 0 || c.err != nil {
			return // closing, and nothing left to send (or nothing can be)
		}
		out := c.pending
		c.pending = c.spare[:0]
		c.mu.Unlock()
		_, err := c.Conn.Write(out)
		c.mu.Lock()
		c.spare = out
		if err != nil && c.err == nil {
			c.err = err
		}
		c.cond.Broadcast()
	}
}

// Close flushes what is pending (bounded by closeFlushTimeout), then
// closes the socket.
func (c *coalescingConn) Close() error {
	c.mu.Lock()
	c.closing = true
	c.cond.Broadcast()
	c.mu.Unlock()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	<-c.done
	return c.Conn.Close()
}

// coalescingDialer is paho's OpenConnectionFunc for tcp:// and mqtt://.
func coalescingDialer(uri *url.URL, opts paho.ClientOptions) (net.Conn, error) {
	d := net.Dialer{Timeout: opts.ConnectTimeout}
	c, err := d.Dial("tcp", uri.Host)
	if err != nil {
		return nil, err
	}
	return newCoalescingConn(c), nil
}

// coalescable reports whether the broker URL is plain TCP.
func coalescable(broker string) bool {
	u, err := url.Parse(broker)
	return err == nil && (u.Scheme == "tcp" || u.Scheme == "mqtt")
}
