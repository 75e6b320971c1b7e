package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/edge-agent/edge-agent/m2m/m2mtest"
)

const createBody = `{"cod_external_ticket_origin":"tg","ticket_origin_type_id":107,"id_external_protocol":7,
"external_protocol":"7","service_code":"m2m","justification":null,"description":"","id_worksite":1,
"state_abbreviation":"MG","municipality":"Uberaba","neighborhood":"","address":"Avenida Cristovão Colombo, 485",
"address_number":1,"zip_code":null,"latitude":null,"longitude":null,"reference_point":"","reporter":"Nox Manager",
"reporter_phone":null,"reporter_birth_date":null,"nameplate_num":"IP05","age_majority_checkbox":0}`

func TestUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"--help"}, &out, &errOut); code != 0 {
		t.Errorf("--help exit %d", code)
	}
	help := errOut.String()
	for _, want := range []string{"-addr", "-addr-file", "-instance", "-token", "-api-key", "-latency", "-error-rate",
		"-down", "-lose-answers", "-retry-after", "-slow-body", "-seed", "-many-unsupported", "-require-header",
		"/_sim/record", "/_sim/faults", "/_sim/reset", "/vendors/m2m/clients/{idInstance}/tickets"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help does not document %s", want)
		}
	}
	for _, args := range [][]string{
		{"--nope"}, {"extra"}, {"--error-rate", "2"}, {"--addr", "0.0.0.0:0"}, {"--addr", ":8080"},
		{"--retry-after", "soon"}, {"--log-level", "loud"}, {"--tickets-path", "x"}, {"--require-header", "novalue"},
	} {
		errOut.Reset()
		if code := run(context.Background(), args, &out, &errOut); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, errOut.String())
		}
	}
}

// waitFile waits for a file to appear and returns its content.
func waitFile(t *testing.T, path string, done <-chan int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(path); err == nil {
			return strings.TrimSpace(string(b))
		}
		select {
		case code := <-done:
			t.Fatalf("m2m-sim exited with %d before listening", code)
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("m2m-sim never wrote its address file")
	return ""
}

func exercise(t *testing.T, url string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/vendors/m2m/clients/69/tickets", strings.NewReader(createBody))
	req.Header.Set("Authorization", "Bearer s3")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 201 {
		t.Errorf("create: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("PUT", url+"/_sim/faults", strings.NewReader(`{"down":true,"retry_after":"9"}`))
	if resp, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	resp, err = http.Post(url+"/vendors/m2m/clients/69/tickets", "application/json", strings.NewReader(createBody))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "9" {
		t.Errorf("down: %d %v", resp.StatusCode, resp.Header)
	}
	resp, err = http.Get(url + "/_sim/record")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rec m2mtest.Record
	if err := json.NewDecoder(resp.Body).Decode(&rec); err != nil {
		t.Fatal(err)
	}
	if rec.Counts.Created != 1 || rec.Counts.Down != 1 || len(rec.Tickets) != 1 || rec.Tickets[0].Nameplate != "IP05" {
		t.Errorf("record %+v", rec.Counts)
	}
}

func TestRunInProcess(t *testing.T) {
	addrFile := filepath.Join(t.TempDir(), "addr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, []string{"--addr-file", addrFile, "--token", "s3", "--seed", "7"}, &out, &errOut)
	}()
	url := waitFile(t, addrFile, done)
	if !strings.HasPrefix(out.String(), "m2m-sim listening on "+url+"\n") {
		t.Errorf("first line %q, want the URL %s", out.String(), url)
	}
	exercise(t, url)
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("run did not return after its context ended")
	}
	if strings.Contains(errOut.String(), "s3") {
		t.Error("the token appears in the log")
	}
}

// TestBinary builds m2m-sim, runs it, hits it and stops it with SIGTERM.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "m2m-sim")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	addrFile := filepath.Join(dir, "addr")
	cmd := exec.Command(bin, "--addr-file", addrFile, "--token", "s3", "--log-level", "debug")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
		_, _ = io.Copy(io.Discard, stdout)
	}()
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
		}
	}()
	var first string
	select {
	case first = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatal("no first line")
	}
	url := waitFile(t, addrFile, nil)
	if first != "m2m-sim listening on "+url+"\n" {
		t.Errorf("first line %q, address file %q", first, url)
	}
	exercise(t, url)
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if err != nil && errors.As(err, &ee) {
			t.Errorf("exit after SIGTERM: %v\n%s", err, stderr.String())
		} else if err != nil {
			t.Error(err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("m2m-sim did not stop on SIGTERM")
	}
	log := stderr.String()
	if !strings.Contains(log, "m2m-sim stopped") || !strings.Contains(log, "outcome=created") {
		t.Errorf("log:\n%s", log)
	}
}
