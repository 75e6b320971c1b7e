// Package mqtttest runs a real, private mosquitto broker on a free loopback
// port, for integration tests, benchmarks and the demo. It never touches a
// system broker: each Broker has its own configuration, persistence folder
// and log in a directory of the caller's.
package mqtttest
