// Command edge-agent is the streetlight gateway agent: the daemon
// (`edge-agent run`, the default with no argument) and the operator's CLI
// (status, devices, tickets, retry, config, version). See the README and
// CONTRACT §1.
//
// This package is the composition root: it owns the configuration (config.go,
// secret.go), wires store → m2m client → mqtt → agent (run.go), speaks to
// systemd (sdnotify.go), serves the status through agent/httpapi
// (statussource.go, hooks.go) and implements the CLI (cli.go, cmd_config.go).
// Product logic lives in the packages it wires, not here.
package main
