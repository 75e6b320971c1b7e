package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/cmd/internal/rig"
)

// stopWait is how long a process gets to stop on SIGTERM before SIGKILL.
const stopWait = 15 * time.Second

// startAgent starts the real edge-agent with its state in dir (rig's
// environment, plus extra), and when notifySock is set, NOTIFY_SOCKET.
func (e *env) startAgent(dir, brokerURL, simURL, httpAddr string, extra map[string]string, notifySock string) (*rig.Proc, error) {
	vars := rig.AgentEnv(dir, brokerURL, simURL, httpAddr, extra)
	if notifySock != "" {
		vars = append(vars, "NOTIFY_SOCKET="+notifySock)
	}
	return rig.Start(dir, "edge-agent", e.bins.Agent, []string{"run"}, vars, false)
}

// waitLog waits until p's log holds text at least n times, p exits, or the
// timeout passes.
func waitLog(p *rig.Proc, text string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(p.Log)
		if bytes.Count(b, []byte(text)) >= n {
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s exited before logging %q:\n%s", p.Name, text, p.Tail(3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not log %q within %v:\n%s", p.Name, text, timeout, p.Tail(3000))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitFileCount waits until the file holds text at least n times.
func waitFileCount(path, text string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		b, _ := os.ReadFile(path)
		if bytes.Count(b, []byte(text)) >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not hold %q %d times after %v", path, text, n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// agentNum reads one number of the agent's /api/status.
func agentNum(httpAddr, path string) (float64, error) {
	st, err := rig.Status(httpAddr)
	if err != nil {
		return 0, err
	}
	return rig.Num(st, path), nil
}

// waitAgentNum polls /api/status until the number at path reaches want.
func waitAgentNum(p *rig.Proc, httpAddr, path string, want float64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := -1.0
	for {
		if v, err := agentNum(httpAddr, path); err == nil {
			last = v
			if v >= want {
				return nil
			}
		}
		if !p.Running() {
			return fmt.Errorf("the agent exited while waiting for %s to reach %v:\n%s", path, want, p.Tail(3000))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is %v, not %v, after %v", path, last, want, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lightsimSummary is lightsim's last line: "lightsim: published=N failed=F
// elapsed=S rate=R msgs/s".
var lightsimSummary = regexp.MustCompile(`^lightsim: published=(\d+) failed=(\d+) elapsed=([0-9.]+) rate=([0-9.]+) msgs/s`)

type lightsimResult struct {
	Published, Failed int64
	Elapsed, Rate     float64
}

// runLightsim runs lightsim to its end and parses its summary.
func (e *env) runLightsim(dir, name string, args []string) (lightsimResult, error) {
	p, err := rig.Start(dir, name, e.bins.Lightsim, args, nil, true)
	if err != nil {
		return lightsimResult{}, err
	}
	select {
	case <-p.Done():
	case <-e.ctx.Done():
		p.Stop(stopWait)
		return lightsimResult{}, e.ctx.Err()
	case <-time.After(10 * time.Minute):
		p.Kill()
		return lightsimResult{}, errors.New("lightsim did not finish within 10 minutes")
	}
	if code := p.ExitCode(); code != 0 {
		return lightsimResult{}, fmt.Errorf("lightsim exited %d:\n%s", code, p.Tail(3000))
	}
	for _, l := range p.Lines() {
		if m := lightsimSummary.FindStringSubmatch(l); m != nil {
			var r lightsimResult
			r.Published, _ = strconv.ParseInt(m[1], 10, 64)
			r.Failed, _ = strconv.ParseInt(m[2], 10, 64)
			r.Elapsed, _ = strconv.ParseFloat(m[3], 64)
			r.Rate, _ = strconv.ParseFloat(m[4], 64)
			return r, nil
		}
	}
	return lightsimResult{}, fmt.Errorf("lightsim printed no summary:\n%s", p.Tail(3000))
}

// subProc is a running mosquitto_sub whose output lines are counted as
// they arrive.
type subProc struct {
	cmd   *exec.Cmd
	lines atomic.Int64
	done  chan struct{}
	err   error
	// CPU is its user+system time, once done.
	CPU float64
}

// mosquittoSubArgs are the consumer's arguments: QoS 1, a persistent
// session under a fixed client id, the telemetry topics.
func mosquittoSubArgs(port int, clientID string, extra ...string) []string {
	return append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-V", "mqttv311", "-c", "-i", clientID, "-q", "1",
		"-t", "streetlights/+/telemetry"}, extra...)
}

func startSub(dir string, args []string) (*subProc, error) {
	logf, err := os.OpenFile(filepath.Join(dir, "mosquitto_sub.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("mosquitto_sub", args...)
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start mosquitto_sub: %w", err)
	}
	s := &subProc{cmd: cmd, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		defer logf.Close()
		buf := make([]byte, 64*1024)
		for {
			n, err := stdout.Read(buf)
			s.lines.Add(int64(bytes.Count(buf[:n], []byte{'\n'})))
			if err != nil {
				break
			}
		}
		s.err = cmd.Wait()
		if st := cmd.ProcessState; st != nil {
			s.CPU = (st.UserTime() + st.SystemTime()).Seconds()
		}
	}()
	return s, nil
}

// stop ends the consumer if it has not ended by itself.
func (s *subProc) stop() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}

// notifyListener is a NOTIFY_SOCKET as systemd makes it: a unix datagram
// socket; it reports when READY=1 arrives.
type notifyListener struct {
	Path  string
	conn  *net.UnixConn
	ready chan time.Time
}

func listenNotify(path string) (*notifyListener, error) {
	_ = os.Remove(path)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return nil, fmt.Errorf("notify socket: %w", err)
	}
	n := &notifyListener{Path: path, conn: conn, ready: make(chan time.Time, 1)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, _, err := conn.ReadFromUnix(buf)
			if err != nil {
				return
			}
			at := time.Now()
			for _, l := range strings.Split(string(buf[:k]), "\n") {
				if l == "READY=1" {
					select {
					case n.ready <- at:
					default:
					}
				}
			}
		}
	}()
	return n, nil
}

// waitReady returns when READY=1 arrived.
func (n *notifyListener) waitReady(p *rig.Proc, timeout time.Duration) (time.Time, error) {
	select {
	case at := <-n.ready:
		return at, nil
	case <-p.Done():
		return time.Time{}, fmt.Errorf("the agent exited before READY=1:\n%s", p.Tail(3000))
	case <-time.After(timeout):
		return time.Time{}, fmt.Errorf("no READY=1 within %v:\n%s", timeout, p.Tail(3000))
	}
}

func (n *notifyListener) close() {
	_ = n.conn.Close()
	_ = os.Remove(n.Path)
}

// metricsValue scrapes one unlabelled metric from the agent's /metrics.
func metricsValues(httpAddr string, names ...string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + httpAddr + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	out := map[string]float64{}
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 2 && want[f[0]] {
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				out[f[0]] = v
			}
		}
	}
	return out, nil
}
