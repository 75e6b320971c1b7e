package main

import (
	"fmt"
	"io"
	"os"
	"runtime"
)

// Stamped at build time by the Makefile (-ldflags -X). buildDate is the
// commit's date, so that builds are reproducible; it also feeds the
// clock-trust rule (a clock earlier than the build is surely wrong).
var (
	version   = "dev"
	commit    = "unknown"
	buildDate = ""
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run dispatches a subcommand and returns the process exit code:
// 0 ok, 1 failure, 2 bad usage or bad configuration (CONTRACT §1).
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "run"
	if len(args) > 0 {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "edge-agent %s (commit %s, built %s) %s %s/%s\n",
			version, commit, buildDateOrUnknown(), runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return 0
	case "run":
		return cmdRun(args, os.Environ(), stderr)
	case "config":
		return cmdConfig(args, os.Environ(), stdout, stderr)
	case "status":
		return cmdStatus(args, os.Environ(), stdout, stderr)
	case "devices":
		return cmdDevices(args, os.Environ(), stdout, stderr)
	case "tickets":
		return cmdTickets(args, os.Environ(), stdout, stderr)
	case "retry":
		return cmdRetry(args, os.Environ(), stdout, stderr)
	default:
		fmt.Fprintf(stderr, "edge-agent: unknown command %q\n", cmd)
		return 2
	}
}

func buildDateOrUnknown() string {
	if buildDate == "" {
		return "unknown"
	}
	return buildDate
}
