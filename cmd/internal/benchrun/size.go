package main

import (
	"debug/elf"
	"fmt"
	"os"
	"path/filepath"
)

// sizeResult is the gateway binary for linux/arm64 as `make cross` builds
// it.
type sizeResult struct {
	Command  string
	File     string
	Bytes    int64
	Stripped bool // no .symtab section
}

func runSize(e *env) (*sizeResult, error) {
	dist := filepath.Join(e.work, "dist")
	c := command{Name: "make", Args: []string{"--no-print-directory", "cross", "CROSS_TARGETS=linux/arm64", "DIST=" + dist}, Dir: e.moduleDir}
	if _, err := e.run(c); err != nil {
		return nil, err
	}
	matches, err := filepath.Glob(filepath.Join(dist, "edge-agent_*_linux_arm64"))
	if err != nil || len(matches) != 1 {
		return nil, fmt.Errorf("make cross left %v in %s, want one linux_arm64 binary", matches, dist)
	}
	fi, err := os.Stat(matches[0])
	if err != nil {
		return nil, err
	}
	f, err := elf.Open(matches[0])
	if err != nil {
		return nil, fmt.Errorf("read the arm64 binary: %w", err)
	}
	defer f.Close()
	if f.Machine != elf.EM_AARCH64 {
		return nil, fmt.Errorf("%s is for %v, not arm64", matches[0], f.Machine)
	}
	r := &sizeResult{
		Command:  "make cross CROSS_TARGETS=linux/arm64 DIST=<dir>",
		File:     filepath.Base(matches[0]),
		Bytes:    fi.Size(),
		Stripped: f.Section(".symtab") == nil,
	}
	e.logf("size: %s is %s bytes (stripped: %v)", r.File, thousands(r.Bytes), r.Stripped)
	return r, nil
}
