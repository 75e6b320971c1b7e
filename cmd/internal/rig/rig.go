package rig

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/edge-agent/edge-agent/m2m/m2mtest"
	"github.com/edge-agent/edge-agent/mqtt/mqtttest"
)

// Binaries are the three programs, built.
type Binaries struct{ Agent, Sim, Lightsim string }

// InDir names the binaries in dir (as `make build` leaves them in ./bin),
// as absolute paths: the processes run in the rig's own directory.
func InDir(dir string) Binaries {
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	return Binaries{
		Agent:    filepath.Join(dir, "edge-agent"),
		Sim:      filepath.Join(dir, "m2m-sim"),
		Lightsim: filepath.Join(dir, "lightsim"),
	}
}

// Build compiles the three binaries into dir with the go command, from the
// module that contains this package (moduleDir).
func Build(ctx context.Context, moduleDir, dir string, race bool) (Binaries, error) {
	args := []string{"build", "-o", dir + string(filepath.Separator)}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/edge-agent", "./cmd/m2m-sim", "./cmd/lightsim")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = moduleDir
	if out, err := cmd.CombinedOutput(); err != nil {
		return Binaries{}, fmt.Errorf("go build: %w\n%s", err, out)
	}
	return InDir(dir), nil
}

// Proc is one started process, its output going to a log file in the rig's
// directory (and, for lightsim, its stdout lines kept for the caller).
type Proc struct {
	Name string
	Log  string // path of its stderr (and stdout) log

	cmd  *exec.Cmd
	done chan struct{}
	err  error

	mu    sync.Mutex
	lines []string // stdout lines, when captured
}

// Start runs bin with args and extra environment (on top of a minimal one:
// PATH, HOME, TZ), logging to dir/<name>.log. captureStdout keeps stdout
// lines in memory as well.
func Start(dir, name, bin string, args []string, env []string, captureStdout bool) (*Proc, error) {
	logPath := filepath.Join(dir, name+".log")
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	p := &Proc{Name: name, Log: logPath, done: make(chan struct{})}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(), env...)
	cmd.Stderr = logf
	var stdout io.ReadCloser
	if captureStdout {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			logf.Close()
			return nil, err
		}
	} else {
		cmd.Stdout = logf
	}
	// Own process group: a Ctrl-C on the demo's terminal reaches the demo,
	// which then stops every process in order.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p.cmd = cmd
	var readers sync.WaitGroup
	if stdout != nil {
		readers.Add(1)
		go func() {
			defer readers.Done()
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 64*1024), 1024*1024)
			for sc.Scan() {
				line := sc.Text()
				fmt.Fprintln(logf, line)
				p.mu.Lock()
				p.lines = append(p.lines, line)
				p.mu.Unlock()
			}
		}()
	}
	go func() {
		readers.Wait()
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

func baseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TZ", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Lines returns the stdout lines captured so far.
func (p *Proc) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Pid is the process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// ExitCode is the exit status once Done (-1 when killed by a signal).
func (p *Proc) ExitCode() int {
	<-p.done
	if p.cmd.ProcessState == nil {
		return -1
	}
	return p.cmd.ProcessState.ExitCode()
}

// Stop sends SIGTERM and waits up to timeout, then SIGKILL. It reports
// whether the process stopped by itself in time.
func (p *Proc) Stop(timeout time.Duration) bool {
	if !p.Running() {
		return true
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return true
	case <-time.After(timeout):
		p.Kill()
		return false
	}
}

// Kill sends SIGKILL (a power cut, as far as the process can tell) and
// waits for it to be gone.
func (p *Proc) Kill() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
}

// Signal sends sig to the process.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Tail returns the last n bytes of the process's log, for failure reports.
func (p *Proc) Tail(n int) string {
	b, _ := os.ReadFile(p.Log)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Sim is a running m2m-sim.
type Sim struct {
	*Proc
	URL string
}

// StartSim starts m2m-sim on a free loopback port with extra flags.
func StartSim(dir string, bins Binaries, flags ...string) (*Sim, error) {
	addrFile := filepath.Join(dir, "m2m-sim.url")
	_ = os.Remove(addrFile)
	args := append([]string{"--addr", "127.0.0.1:0", "--addr-file", addrFile}, flags...)
	p, err := Start(dir, "m2m-sim", bins.Sim, args, nil, false)
	if err != nil {
		return nil, err
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil && len(bytes.TrimSpace(b)) > 0 {
			return &Sim{Proc: p, URL: strings.TrimSpace(string(b))}, nil
		}
		if !p.Running() {
			return nil, fmt.Errorf("m2m-sim exited at start:\n%s", p.Tail(2000))
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Kill()
	return nil, errors.New("m2m-sim did not write its address within 20s")
}

// Record fetches what the simulator has received.
func (s *Sim) Record() (m2mtest.Record, error) {
	var rec m2mtest.Record
	err := getJSON(http.DefaultClient, s.URL+"/_sim/record", &rec)
	return rec, err
}

// SetFaults replaces the simulator's injected faults.
func (s *Sim) SetFaults(f m2mtest.Faults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return s.control(http.MethodPut, "/_sim/faults", body)
}

// Reset makes the simulator forget everything it received.
func (s *Sim) Reset() error {
	return s.control(http.MethodPost, "/_sim/reset", nil)
}

// control sends one request to the simulator's control API and wants a 2xx.
func (s *Sim) control(method, path string, body []byte) error {
	req, err := http.NewRequest(method, s.URL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	return nil
}

func getJSON(c *http.Client, url string, v any) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// StartBroker starts a private mosquitto in dir/broker.
func StartBroker(dir string) (*mqtttest.Broker, error) {
	return mqtttest.Start(filepath.Join(dir, "broker"))
}

// FreeAddr returns a free loopback TCP address ("127.0.0.1:port").
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// AgentEnv is the environment of an edge-agent run by the rig: its state in
// dir, the given broker and simulator, a free HTTP port; extra overrides.
func AgentEnv(dir, brokerURL, simURL, httpAddr string, extra map[string]string) []string {
	env := map[string]string{
		"EDGE_GATEWAY_ID":          "gw-demo",
		"EDGE_DATA_DIR":            filepath.Join(dir, "state"),
		"EDGE_CONTROL_SOCKET":      filepath.Join(dir, "control.sock"),
		"EDGE_HTTP_ADDR":           httpAddr,
		"EDGE_MQTT_BROKER":         brokerURL,
		"EDGE_MQTT_CLIENT_ID":      "edge-agent-gw-demo",
		"EDGE_M2M_BASE_URL":        simURL,
		"EDGE_M2M_INSTANCE_ID":     "69",
		"EDGE_TICKET_STATE":        "MG",
		"EDGE_TICKET_MUNICIPALITY": "Uberaba",
	}
	for k, v := range extra {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// Status fetches the agent's /api/status as a generic map.
func Status(httpAddr string) (map[string]any, error) {
	var st map[string]any
	c := &http.Client{Timeout: 3 * time.Second}
	err := getJSON(c, "http://"+httpAddr+"/api/status", &st)
	return st, err
}

// Num reads a number at a dotted path of a decoded JSON object (0 when
// absent).
func Num(m map[string]any, path string) float64 {
	var cur any = m
	for _, k := range strings.Split(path, ".") {
		obj, ok := cur.(map[string]any)
		if !ok {
			return 0
		}
		cur = obj[k]
	}
	switch v := cur.(type) {
	case float64:
		return v
	case string:
		f, _ := strconv.ParseFloat(v, 64)
		return f
	case bool:
		if v {
			return 1
		}
	}
	return 0
}

// WaitHTTP waits until url answers 200 or the timeout passes.
func WaitHTTP(url string, timeout time.Duration) error {
	c := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %s", url, resp.Status)
		} else {
			last = err
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready within %v: %v", timeout, last)
}
