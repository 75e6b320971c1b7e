package mqtttest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InstallHint is the exact command that makes the broker available.
const InstallHint = "apt-get update && apt-get install -y mosquitto"

// ErrNotInstalled is returned when no mosquitto binary can be found.
var ErrNotInstalled = errors.New("mosquitto is not installed (run: " + InstallHint + ")")

// Binary returns the path of the mosquitto binary. Debian installs it in
// /usr/sbin, which is not on a normal user's PATH.
func Binary() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Broker is one running mosquitto process.
type Broker struct {
	// Port is the loopback TCP port it listens on; it stays the same across
	// Restart, so clients can reconnect.
	Port int
	// URL is "tcp://127.0.0.1:<port>".
	URL string
	// Dir holds mosquitto.conf, the persistence file and mosquitto.log.
	Dir string

	bin string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts a broker in dir (created if missing) on a free loopback port.
// Persistence is on, so sessions and queued QoS 1 messages survive Restart,
// and the queue of an offline client is unlimited, so tests see everything
// (a production broker caps it: see the README).
func Start(dir string) (*Broker, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("broker dir: %w", err)
	}
	var lastErr error
	// A port found free can be taken by someone else before mosquitto binds
	// it: try a few.
	for range 5 {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		b := &Broker{Port: port, URL: "tcp://127.0.0.1:" + strconv.Itoa(port), Dir: dir, bin: bin}
		if err := b.writeConfig(); err != nil {
			return nil, err
		}
		if lastErr = b.start(); lastErr == nil {
			return b, nil
		}
	}
	return nil, lastErr
}

// StartT starts a broker for a test in a temporary directory and stops it
// when the test ends. Without mosquitto the test is skipped, saying what to
// install; CI installs it, so there the skip never happens.
func StartT(t testing.TB) *Broker {
	t.Helper()
	if _, err := Binary(); err != nil {
		t.Skipf("skipping: %v", err)
	}
	b, err := Start(t.TempDir())
	if err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Stop(); err != nil {
			t.Logf("stop mosquitto: %v", err)
		}
		if t.Failed() {
			if log, err := os.ReadFile(filepath.Join(b.Dir, "mosquitto.log")); err == nil {
				t.Logf("mosquitto.log:\n%s", tail(log, 4000))
			}
		}
	})
	return b
}

func (b *Broker) writeConfig() error {
	conf := fmt.Sprintf(`# written by mqtttest: a private broker for one test or demo
listener %d 127.0.0.1
allow_anonymous true
persistence true
persistence_location %s/
persistence_file mosquitto.db
autosave_interval 1
max_queued_messages 0
max_inflight_messages 100
max_packet_size 1048576
log_dest file %s
log_type error
log_type warning
log_type notice
connection_messages true
`, b.Port, b.Dir, filepath.Join(b.Dir, "mosquitto.log"))
	// Started as root, mosquitto drops to the "mosquitto" user, which
	// cannot write the caller's (0700, root-owned) directory: no log and,
	// silently, no persistence, so sessions would not survive Restart.
	// A private test broker may stay root.
	if os.Geteuid() == 0 {
		conf += "user root\n"
	}
	return os.WriteFile(filepath.Join(b.Dir, "mosquitto.conf"), []byte(conf), 0o644)
}

func (b *Broker) start() error {
	cmd := exec.Command(b.bin, "-c", filepath.Join(b.Dir, "mosquitto.conf"))
	cmd.Dir = b.Dir
	// Its own process group, so a Ctrl-C meant for the parent's terminal
	// is not delivered to the broker before the parent can stop it in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start mosquitto: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	addr := "127.0.0.1:" + strconv.Itoa(b.Port)
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("mosquitto exited at start (port %d taken?); see %s", b.Port, filepath.Join(b.Dir, "mosquitto.log"))
		default:
		}
		// The port was free when chosen, but another listener (a parallel
		// test's broker or proxy) can take it before mosquitto binds it; then
		// the dial below reaches that one while mosquitto exits with
		// "Address already in use". Where /proc tells, insist that the
		// listener is this process's.
		if owned, known := listensOn(cmd.Process.Pid, b.Port); known && !owned {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			b.mu.Lock()
			b.cmd, b.done = cmd, done
			b.mu.Unlock()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-done
	return fmt.Errorf("mosquitto did not listen on %s within 10s", addr)
}

// Stop stops the broker gracefully (SIGTERM), so it saves its persistence
// file. It is safe to call more than once.
func (b *Broker) Stop() error { return b.signal(syscall.SIGTERM) }

// Kill stops the broker with SIGKILL: no save, as in a power cut.
func (b *Broker) Kill() error { return b.signal(syscall.SIGKILL) }

func (b *Broker) signal(sig syscall.Signal) error {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.cmd, b.done = nil, nil
	b.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
		return nil
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("mosquitto did not stop within 10s; killed")
	}
}

// Restart stops the broker gracefully and starts it again on the same port
// with the same persistence, as an operator's restart or a crash-and-respawn
// would.
func (b *Broker) Restart() error {
	if err := b.Stop(); err != nil {
		return err
	}
	return b.Start()
}

// Start starts a stopped broker again on its port.
func (b *Broker) Start() error {
	var err error
	// The port can linger in TIME_WAIT on some kernels; mosquitto sets
	// SO_REUSEADDR, but retry briefly all the same.
	for range 20 {
		if err = b.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// Running reports whether the broker process is up.
func (b *Broker) Running() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cmd != nil
}

// listensOn reports whether process pid has a TCP socket listening on
// 127.0.0.1:port, from /proc (Linux). known is false where /proc cannot
// tell (another OS, no permission): the caller then trusts the dial.
func listensOn(pid, port int) (owned, known bool) {
	table, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return false, false
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return false, false
	}
	local := fmt.Sprintf("0100007F:%04X", port) // 127.0.0.1, as the kernel prints it
	inodes := map[string]bool{}
	for _, line := range strings.Split(string(table), "\n") {
		f := strings.Fields(line)
		// sl local_address rem_address st ... inode (field 9); 0A is LISTEN.
		if len(f) > 9 && f[1] == local && f[3] == "0A" {
			inodes["socket:["+f[9]+"]"] = true
		}
	}
	for _, fd := range fds {
		if target, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); err == nil && inodes[target] {
			return true, true
		}
	}
	return false, true
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
