// Command edge-demo runs the whole system on this machine for a person to
// watch: a private mosquitto on a free loopback port, m2m-sim, a lightsim
// fleet of a few dozen lamps of which some fail (and later recover), and the
// real edge-agent with its status page. It prints where to look and a live
// summary line, stops everything cleanly on Ctrl-C or after DEMO_DURATION,
// then prints the tickets the simulator received. Everything it writes is in
// one temporary folder, removed at the end unless DEMO_KEEP=1.
//
// It is a developer's tool (`make demo`), not shipped to gateways.
package main
