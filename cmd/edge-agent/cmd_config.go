package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// configReport is the --json form of `edge-agent config`.
type configReport struct {
	Valid     bool             `json:"valid"`
	Variables []configVariable `json:"variables"`
	Warnings  []string         `json:"warnings"`
}

type configVariable struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	Group   string `json:"group"`
	Default bool   `json:"default"`
	// Source: "environment", "default", or how the value was found:
	// "EDGE_X_FILE", "credential <name>", "host name", "$STATE_DIRECTORY"…
	Source string `json:"source"`
}

// cmdConfig is `edge-agent config [--json]`: it validates the configuration
// in env and prints every variable, secrets redacted, grouped as in the
// contract, marking defaults. Warnings and problems go to stderr, one line
// each. Exit code: 0 valid, 2 invalid or bad usage.
func cmdConfig(args, env []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: edge-agent config [--json]")
		fmt.Fprintln(stderr, "Validates the EDGE_* configuration and prints it, secrets redacted.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "edge-agent config: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}

	l := load(env, osDeps())
	for _, w := range l.warnings {
		fmt.Fprintln(stderr, "warning: "+w)
	}
	if err := l.err(); err != nil {
		fmt.Fprintln(stderr, err)
		return exitCodeFor(err)
	}

	if *asJSON {
		rep := configReport{Valid: true, Warnings: l.warnings}
		if rep.Warnings == nil {
			rep.Warnings = []string{}
		}
		for _, v := range l.vars {
			rep.Variables = append(rep.Variables, configVariable{
				Name: v.Name, Value: v.Value, Group: v.Group, Default: v.Default, Source: sourceOf(v),
			})
		}
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintf(stderr, "edge-agent config: %v\n", err)
			return 1
		}
		return 0
	}

	var b strings.Builder
	group := ""
	for _, v := range l.vars {
		if v.Group != group {
			if group != "" {
				b.WriteString("\n")
			}
			group = v.Group
			b.WriteString("# " + group + "\n")
		}
		b.WriteString(v.Name + "=" + quoteIfNeeded(v.Value))
		switch {
		case v.Default && v.From != "":
			b.WriteString("  (default: " + v.From + ")")
		case v.Default:
			b.WriteString("  (default)")
		case v.From != "":
			b.WriteString("  (from " + v.From + ")")
		}
		b.WriteString("\n")
	}
	if _, err := io.WriteString(stdout, b.String()); err != nil {
		fmt.Fprintf(stderr, "edge-agent config: %v\n", err)
		return 1
	}
	return 0
}

func sourceOf(v varSource) string {
	switch {
	case v.From != "":
		return v.From
	case v.Default:
		return "default"
	default:
		return "environment"
	}
}

// quoteIfNeeded quotes a value that would be ambiguous unquoted (spaces,
// quotes, a #), so that the line reads back the same.
func quoteIfNeeded(s string) string {
	if strings.ContainsAny(s, " \t\"'#\\") || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return strconv.Quote(s)
	}
	return s
}
