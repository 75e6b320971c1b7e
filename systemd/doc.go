// Package systemd holds no code: it is the home of the deployment files and of
// the tests that prove them.
//
// It owns edge-agent.service (the systemd unit, CONTRACT §9) and
// edge-agent.env.example (every EDGE_* variable, installed as
// /etc/edge-agent/edge-agent.env), and tests, run by `make test`, that
//
//   - score the unit's hardening with `systemd-analyze security --offline=yes`
//     (2.0 or lower) and check it with `systemd-analyze verify` and a parser;
//   - check that the example environment file lists exactly the variables the
//     configuration code reads (cmd/edge-agent/config.go), with its defaults,
//     grouped as in the contract;
//   - build `make cross` twice from two clones of the same commit and compare
//     the bytes, and run each ARM binary's `version` under qemu-user-static;
//   - build `make deb`, inspect each package with dpkg-deb and install, remove
//     and purge the host-architecture package in a scratch root with dpkg.
//
// It must not hold agent code or anything the daemon imports: the daemon's
// sd_notify helper lives in cmd/edge-agent (sdnotify.go), and the Debian
// packaging script and maintainer scripts in packaging/. The tests skip, saying
// why, only when a tool is missing (systemd-analyze, qemu-user-static,
// dpkg-deb); `make test` installs them as root through scripts/ensure-tools.
package systemd
