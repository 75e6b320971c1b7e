// Package rig runs the whole system as separate processes on this machine —
// a private mosquitto, m2m-sim, lightsim and the real edge-agent binary —
// for `make demo` and the end-to-end tests. Everything it starts lives in
// one directory of the caller's and listens on loopback only; Close stops
// every process it started.
//
// It must not hold product logic: it starts, stops, kills and asks.
package rig
